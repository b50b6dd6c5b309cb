"""The paper's depth benchmarks: SUN RGB-D and NYU Depth v2 scene classification of depth maps as disparity.

Both read the SUN RGB-D v1 tree in place through :mod:`bind_depth.datasets.sunrgbd` (NYU Depth v2's 1,449
labelled frames are its ``kv1/NYUdata/NYU0001..NYU1449`` folders, with in-filled depth in ``depth_bfx/``), so each
item is a :class:`bind_depth.DepthInput` carrying its frame's focal length and its sensor's baseline. Protocols
(ImageBind App. A, as in ``../shared/research/anchors.md`` c5) are written out in ``bindcore/eval/README.md``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bind_depth.datasets import sunrgbd
from bindcore.errors import InputError
from bindcore.eval.benchmarks.spec import Benchmark, Classification, Problem

#: NYU Depth v2's 27 scene types (its labelled set's ``sceneTypes``; the dataset spells "excercise_room").
NYU_SCENE_TYPES = ("basement", "bathroom", "bedroom", "bookstore", "cafe", "classroom", "computer_lab",
                   "conference_room", "dinette", "dining_room", "exercise_room", "foyer", "furniture_store",
                   "home_office", "home_storage", "indoor_balcony", "kitchen", "laundry_room", "living_room",
                   "office", "office_kitchen", "playroom", "printer_room", "reception_room", "student_lounge",
                   "study", "study_room")
#: The 10-class NYU-D task (Gupta et al.; Omnivore, ImageBind): nine scene types and "other" for the rest.
NYU_NAMED_CLASSES = ("bathroom", "bedroom", "bookstore", "classroom", "dining_room", "home_office", "kitchen",
                     "living_room", "office")
NYU_OTHER = tuple(name for name in NYU_SCENE_TYPES if name not in NYU_NAMED_CLASSES)  # the 18 names of "other"
NYU_FRAMES = 1449
NYU_SPLITS_FILE = "splits.mat"  # NYU's published train/test split: trainNdxs (795), testNdxs (654), 1-based


class SunRgbdOptions(BaseModel):
    """``-o split_file PATH``: another split (the toolbox's allsplit.mat or a text list of scene folders);
    ``-o raw_depth true``: read ``depth/`` instead of the in-filled ``depth_bfx/``."""

    model_config = ConfigDict(extra="forbid")
    split_file: Path | None = None
    raw_depth: bool = False
    classes: list[str] | None = Field(None, min_length=2, description="scene names to classify (as scene.txt "
                                      "writes them); default: the paper's 19 classes")

    @field_validator("classes", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:  # -o classes a,b,c on the command line
        return [name.strip() for name in value.split(",") if name.strip()] if isinstance(value, str) else value


class NyuOptions(BaseModel):
    """``-o splits PATH``: NYU's ``splits.mat`` when it is not ``ROOT/splits.mat``; ``-o raw_depth true`` as for
    SUN RGB-D."""

    model_config = ConfigDict(extra="forbid")
    splits: Path | None = None
    raw_depth: bool = False


def _prompt_name(name: str) -> str:
    return name.replace("_", " ")


def read_sunrgbd(root: Path, options: SunRgbdOptions) -> Classification:
    """SUN RGB-D's test split (``alltest`` of the toolbox's allsplit.mat), keeping the frames of the 19 scene
    classes (ImageBind: 4,660 test images); frames of other scenes are outside the task, not problems."""
    found = sunrgbd.scan(root, "test", split_file=options.split_file, prefer_infilled=not options.raw_depth)
    classes = tuple(options.classes) if options.classes is not None else sunrgbd.SCENE_CLASSES
    index = {name: i for i, name in enumerate(classes)}
    kept = [record for record in found.records if record.scene in index]
    return Classification(items=[record.depth_input() for record in kept],
                          labels=[index[record.scene] for record in kept],
                          class_names=[[_prompt_name(name)] for name in classes], class_labels=list(classes),
                          sources=[record.name for record in kept], problems=found.problems)


def read_nyu_test_frames(path: Path) -> list[int]:
    """The 1-based frame numbers of ``testNdxs`` in NYU's ``splits.mat``; InputError naming the file otherwise."""
    if not path.is_file():
        raise InputError(path, f"NYU Depth v2 split file {NYU_SPLITS_FILE} not found",
                         fix="download splits.mat from the NYU Depth v2 page into ROOT, or pass -o splits PATH")
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except (NotImplementedError, ValueError, OSError) as error:
        raise InputError(path, f"cannot read the MAT-file: {error}") from None
    if "testNdxs" not in content:
        raise InputError(path, "no testNdxs entry", fix="pass NYU Depth v2's splits.mat")
    frames = [int(v) for v in content["testNdxs"].ravel()]
    bad = [v for v in frames if not 1 <= v <= NYU_FRAMES]
    if bad:
        raise InputError(path, f"testNdxs holds {len(bad)} indices outside 1..{NYU_FRAMES}, e.g. {bad[0]}")
    return frames


def read_nyud(root: Path, options: NyuOptions) -> Classification:
    """NYU Depth v2's 654 test frames (``testNdxs``), 10 classes; "other" scores the maximum over its 18 names.

    Labels come from each frame's ``scene.txt``; a name that is not one of NYU's 27 scene types is a problem
    rather than a silent "other"."""
    dataset = sunrgbd.dataset_folder(root)
    splits = Path(options.splits) if options.splits is not None else Path(root) / NYU_SPLITS_FILE
    frames = read_nyu_test_frames(splits)
    class_of = {name: i for i, name in enumerate(NYU_NAMED_CLASSES)}
    class_of.update({name: len(NYU_NAMED_CLASSES) for name in NYU_OTHER})
    data = Classification(items=[], labels=[], sources=[], problems=[],
                          class_names=[[_prompt_name(n)] for n in NYU_NAMED_CLASSES]
                          + [[_prompt_name(n) for n in NYU_OTHER]],
                          class_labels=[*NYU_NAMED_CLASSES, "other"])
    for position, frame in enumerate(frames):
        name = f"kv1/NYUdata/NYU{frame:04d}"
        where = f"{splits.name} testNdxs[{position}]: {name}"
        try:
            record = sunrgbd.read_record(dataset, name, prefer_infilled=not options.raw_depth)
        except InputError as error:
            data.problems.append(Problem(source=where, reason=str(error)))
            continue
        scene = record.scene.lower().replace(" ", "_").replace("excercise", "exercise")
        if scene not in class_of:
            data.problems.append(Problem(source=where, reason=f"scene {record.scene!r} is not one of NYU Depth "
                                                              "v2's 27 scene types"))
            continue
        data.items.append(record.depth_input())
        data.labels.append(class_of[scene])
        data.sources.append(name)
    return data


SUNRGBD = Benchmark(
    name="sunrgbd", modality="depth", task="zero_shot", metrics=("top1", "top5"),
    layout="SUNRGBD/<sensor>/.../<scene>/{image/, depth_bfx/, intrinsics.txt, scene.txt} and "
           "SUNRGBDtoolbox/traintestSUNRGBD/allsplit.mat (SUNRGBD.zip and SUNRGBDtoolbox.zip unpacked side by side)",
    protocol="alltest frames of the 19 scene classes; in-filled depth as disparity (per-frame focal length, "
             "per-sensor baseline); CLIP ImageNet prompts",
    read=read_sunrgbd, paper={"top1": 0.351}, paper_source="ImageBind Table 2 (ViT-H, SUN-D)",
    options=SunRgbdOptions)

NYUD = Benchmark(
    name="nyud", modality="depth", task="zero_shot", metrics=("top1",),
    layout="the SUN RGB-D tree (SUNRGBD/kv1/NYUdata/NYU0001..NYU1449) and NYU Depth v2's splits.mat in ROOT",
    protocol="testNdxs frames (654), 10 classes, 'other' = max cosine over 18 scene names; in-filled depth as "
             "disparity; CLIP ImageNet prompts",
    read=read_nyud, paper={"top1": 0.540}, paper_source="ImageBind Table 2 (ViT-H, NYU-D)", options=NyuOptions)

BENCHMARKS = (SUNRGBD, NYUD)

__all__ = ["BENCHMARKS", "NYUD", "NYU_NAMED_CLASSES", "NYU_OTHER", "NYU_SCENE_TYPES", "SUNRGBD", "NyuOptions",
           "SunRgbdOptions", "read_nyud", "read_sunrgbd"]
