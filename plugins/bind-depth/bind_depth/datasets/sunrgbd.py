"""The SUN RGB-D v1 tree as Princeton publishes it (``SUNRGBD.zip`` + ``SUNRGBDtoolbox.zip``), read in place.

Layout (from the dataset's readme and the toolbox's ``traintestSUNRGBD/allsplit.mat``, as votenet's
``extract_split.m`` and Omnivore-style scene classifiers read them)::

    ROOT/                                   the folder holding SUNRGBD/ (ROOT may also be SUNRGBD/ itself)
      SUNRGBD/<sensor>/<source>/.../<scene folder>/     sensor: kv1 | kv2 | realsense | xtion; depth varies
          image/<name>.jpg                  RGB
          depth_bfx/<name>.png              in-filled depth (preferred), depth/<name>.png the raw one
          intrinsics.txt                    3x3 camera matrix, row-major (fx is its first value)
          scene.txt                         the scene class, one word (e.g. "bedroom")
      SUNRGBDtoolbox/traintestSUNRGBD/allsplit.mat      alltrain / alltest: scene folders as absolute paths of
                                                        the authors' machine (".../SUNRGBD/kv1/NYUdata/NYU0001")

Depth PNGs hold millimetres rotated left by 3 bits (decoded by :func:`bind_depth.decode_sunrgbd_depth`); a
record's :meth:`SunRgbdRecord.depth_input` carries its own focal length and its sensor's baseline (Omnivore's
values: 0.075 m for the Kinects, 0.095 m for RealSense and Xtion, facebookresearch/omnivore#12), so disparity is
right for each sensor. Shared by the ``sunrgbd``/``nyud`` benchmarks and the SUN RGB-D training data kind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bind_depth.preprocess import DepthInput
from bindcore.errors import InputError
from bindcore.eval.benchmarks.spec import Problem

SENSORS = ("kv1", "kv2", "realsense", "xtion")
#: Stereo/projector baseline per sensor, metres (Omnivore's SUN RGB-D conversion; Xtion's is their estimate).
SENSOR_BASELINES = {"kv1": 0.075, "kv2": 0.075, "realsense": 0.095, "xtion": 0.095}
#: The 19 scene classes with at least 80 images (Song et al. 2015) that Omnivore and ImageBind classify.
SCENE_CLASSES = ("bathroom", "bedroom", "classroom", "computer_room", "conference_room", "corridor", "dining_area",
                 "dining_room", "discussion_area", "furniture_store", "home_office", "kitchen", "lab",
                 "lecture_theatre", "library", "living_room", "office", "rest_space", "study_space")
#: Where the toolbox's split file lies under ROOT (or beside SUNRGBD/).
SPLIT_FILE = Path("SUNRGBDtoolbox") / "traintestSUNRGBD" / "allsplit.mat"
SPLIT_KEYS = {"train": "alltrain", "test": "alltest"}

Split = Literal["train", "test", "all"]


@dataclass(frozen=True)
class SunRgbdRecord:
    """One RGB-D frame of the tree: its files, camera and scene label."""

    name: str  # the scene folder relative to SUNRGBD/, e.g. "kv1/NYUdata/NYU0001"
    rgb: Path
    depth: Path
    intrinsics: tuple[float, ...]  # the 3x3 camera matrix, row-major
    sensor: str
    scene: str  # scene.txt as written (e.g. "living_room"); "" when the file is empty

    @property
    def focal_length(self) -> float:
        return self.intrinsics[0]

    @property
    def baseline(self) -> float:
        return SENSOR_BASELINES[self.sensor]

    def depth_input(self) -> DepthInput:
        """The depth map as the depth modality's raw input: decoded from SUN RGB-D's encoding when preprocessed,
        with this frame's focal length and its sensor's baseline."""
        return DepthInput(self.depth, encoding="sunrgbd", focal_length=self.focal_length, baseline=self.baseline)


@dataclass
class SunRgbdScan:
    """What :func:`scan` found: usable records and the listed frames it could not use (never dropped silently)."""

    records: list[SunRgbdRecord]
    problems: list[Problem] = field(default_factory=list)
    split_source: str = ""  # the split file read ("" for split="all")


def dataset_folder(root: Path) -> Path:
    """``root/SUNRGBD`` or ``root`` itself when it holds the sensor folders; InputError otherwise."""
    root = Path(root)
    for candidate in (root / "SUNRGBD", root):
        if any((candidate / sensor).is_dir() for sensor in SENSORS):
            return candidate
    raise InputError(root, "no SUN RGB-D tree here: expected SUNRGBD/ with kv1/, kv2/, realsense/ or xtion/",
                     fix="pass the folder where SUNRGBD.zip was unpacked (it holds SUNRGBD/)")


def relative_scene_name(listed: str) -> str:
    """A split entry → the scene folder relative to SUNRGBD/. Entries are the authors' absolute paths
    (``/n/fs/sun3d/data/SUNRGBD/kv1/NYUdata/NYU0001``) or already relative (``kv1/NYUdata/NYU0001``)."""
    text = listed.strip().replace("\\", "/").rstrip("/")
    marker = "SUNRGBD/"
    at = text.rfind("/" + marker)
    if at >= 0:
        return text[at + len(marker) + 1:]
    if text.startswith(marker):
        return text[len(marker):]
    return text.lstrip("/")


def read_split_file(path: Path, split: Literal["train", "test"]) -> list[str]:
    """Scene folders of ``split`` from the toolbox's ``allsplit.mat`` or from a text list (one folder a line;
    ``#`` comments and blank lines ignored; then ``split`` is not used)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "split file not found",
                         fix=f"unpack SUNRGBDtoolbox.zip beside SUNRGBD/ (it has {SPLIT_FILE.as_posix()}) or pass "
                             "-o split_file PATH (allsplit.mat or a text list of scene folders)")
    if path.suffix.lower() != ".mat":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    from scipy.io import loadmat

    try:
        content = loadmat(path)
    except (NotImplementedError, ValueError, OSError) as error:  # v7.3 (HDF5) or not a MAT-file
        raise InputError(path, f"cannot read the MAT-file: {error}",
                         fix="use the toolbox's allsplit.mat (MAT v5) or a text list of scene folders") from None
    key = SPLIT_KEYS[split]
    if key not in content:
        raise InputError(path, f"no {key!r} entry (has {sorted(k for k in content if not k.startswith('__'))})",
                         fix="pass the toolbox's traintestSUNRGBD/allsplit.mat")
    return [_mat_string(entry) for entry in content[key].ravel()]


def _mat_string(entry: object) -> str:
    """One cell of a MAT cell array of strings (scipy gives nested object/str arrays) → str."""
    while not isinstance(entry, str):
        entry = entry.ravel()[0] if hasattr(entry, "ravel") else entry[0]  # type: ignore[index]
    return entry


def find_split_file(root: Path, dataset: Path) -> Path:
    for base in (Path(root), dataset.parent):
        if (base / SPLIT_FILE).is_file():
            return base / SPLIT_FILE
    return Path(root) / SPLIT_FILE


def scene_folders(dataset: Path) -> list[str]:
    """Every scene folder of the tree (a folder with ``intrinsics.txt`` and ``image/``), sorted, relative."""
    found = []
    for sensor in SENSORS:
        for folder, subfolders, files in os.walk(dataset / sensor):
            if "intrinsics.txt" in files and "image" in subfolders:
                found.append(Path(folder).relative_to(dataset).as_posix())
                subfolders[:] = []  # fullres/ and annotation folders below are not frames
            else:
                subfolders.sort()
    return sorted(found)


def read_record(dataset: Path, name: str, prefer_infilled: bool = True) -> SunRgbdRecord:
    """The record of one scene folder; InputError naming the missing or malformed file."""
    folder = dataset / name
    if not folder.is_dir():
        raise InputError(folder, "scene folder missing")
    sensor = name.split("/", 1)[0]
    if sensor not in SENSOR_BASELINES:
        raise InputError(folder, f"unknown sensor folder {sensor!r}", fix=f"expected one of {', '.join(SENSORS)}")
    depth_folders = ("depth_bfx", "depth") if prefer_infilled else ("depth", "depth_bfx")
    depth = next((found for sub in depth_folders if (found := _only_file(folder / sub, ".png"))), None)
    if depth is None:
        raise InputError(folder, "no depth PNG in depth_bfx/ or depth/")
    rgb = _only_file(folder / "image", ".jpg", ".png")
    if rgb is None:
        raise InputError(folder / "image", "no RGB image")
    return SunRgbdRecord(name=name, rgb=rgb, depth=depth, intrinsics=read_intrinsics(folder / "intrinsics.txt"),
                         sensor=sensor, scene=read_scene(folder / "scene.txt"))


def _only_file(folder: Path, *suffixes: str) -> Path | None:
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    return files[0] if files else None


def read_intrinsics(path: Path) -> tuple[float, ...]:
    """``intrinsics.txt``: nine numbers (the 3x3 camera matrix, row-major) with a positive focal length."""
    if not path.is_file():
        raise InputError(path, "intrinsics.txt missing")
    try:
        values = tuple(float(v) for v in path.read_text(encoding="utf-8").split())
    except ValueError:
        raise InputError(path, "intrinsics.txt holds a non-number", fix="expected a 3x3 matrix") from None
    if len(values) != 9 or not values[0] > 0 or values[0] == float("inf"):
        raise InputError(path, f"expected a 3x3 matrix with a positive focal length, got {len(values)} numbers")
    return values


def read_scene(path: Path) -> str:
    if not path.is_file():
        raise InputError(path, "scene.txt missing")
    return path.read_text(encoding="utf-8").strip()


def scan(root: Path, split: Split = "test", split_file: Path | None = None,
         prefer_infilled: bool = True) -> SunRgbdScan:
    """The frames of ``split`` under ``root``, in split-file order (``"all"``: every scene folder, sorted).

    A listed frame whose folder or files are missing or malformed becomes a :class:`Problem`
    (``"allsplit.mat alltest[12]: kv1/NYUdata/NYU0001"``); a missing split file raises InputError naming it.
    ``prefer_infilled`` reads ``depth_bfx/`` (the toolbox's in-filled depth) before the raw ``depth/``.
    """
    dataset = dataset_folder(root)
    if split == "all":
        names: Iterable[tuple[str, str]] = ((name, name) for name in scene_folders(dataset))
        source = ""
    else:
        path = Path(split_file) if split_file is not None else find_split_file(root, dataset)
        listed = read_split_file(path, split)
        label = f"{path.name} {SPLIT_KEYS[split]}" if path.suffix.lower() == ".mat" else path.name
        names = ((relative_scene_name(entry), f"{label}[{i}]: {entry.strip()}") for i, entry in enumerate(listed))
        source = str(path)
    result = SunRgbdScan(records=[], split_source=source)
    for name, where in names:
        try:
            result.records.append(read_record(dataset, name, prefer_infilled))
        except InputError as error:
            result.problems.append(Problem(source=where, reason=str(error)))
    return result


__all__ = ["SCENE_CLASSES", "SENSORS", "SENSOR_BASELINES", "SPLIT_FILE", "SunRgbdRecord", "SunRgbdScan",
           "dataset_folder", "read_intrinsics", "read_record", "read_split_file", "relative_scene_name", "scan",
           "scene_folders"]
