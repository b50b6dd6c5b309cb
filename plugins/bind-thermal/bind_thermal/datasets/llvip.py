"""The LLVIP tree as its authors publish it (bupt-ai-cz/LLVIP, ``LLVIP.zip``), read in place.

Layout (from the dataset's README: "The same pair of visible and infrared images share the same annotation, and
they have the same name. The labels are in VOC format"; 12,025 train and 3,463 test pairs, 7,931 test persons)::

    ROOT/                       the LLVIP/ folder (or the folder holding it)
      infrared/{train,test}/<id>.jpg
      visible/{train,test}/<id>.jpg
      Annotations/<id>.xml      VOC: <size><width/><height/></size>, <object><name>person</name>
                                <bndbox><xmin/><ymin/><xmax/><ymax/></bndbox></object> ...

Shared by the ``llvip`` benchmark (person and background crops of the infrared images) and the LLVIP training
data kind (infrared ↔ visible pairs).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from bindcore.errors import InputError
from bindcore.eval.benchmarks.spec import Problem
from bindcore.imageio import read_gray_image

Split = Literal["train", "test"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class LlvipPair:
    """One registered infrared/visible pair and its annotation file (None when the tree has none for it)."""

    name: str  # the shared file stem, e.g. "190001"
    infrared: Path
    visible: Path
    annotation: Path | None


@dataclass
class LlvipPairs:
    pairs: list[LlvipPair]
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Box:
    """A VOC box in pixels: columns [xmin, xmax), rows [ymin, ymax)."""

    xmin: int
    ymin: int
    xmax: int
    ymax: int

    @property
    def width(self) -> int:
        return self.xmax - self.xmin

    @property
    def height(self) -> int:
        return self.ymax - self.ymin

    def overlaps(self, other: Box) -> bool:
        return (self.xmin < other.xmax and other.xmin < self.xmax
                and self.ymin < other.ymax and other.ymin < self.ymax)

    def crop(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(image[self.ymin:self.ymax, self.xmin:self.xmax])


def dataset_folder(root: Path) -> Path:
    """``root`` or ``root/LLVIP`` when it holds ``infrared/``; InputError naming the expected folders."""
    root = Path(root)
    for candidate in (root, root / "LLVIP"):
        if (candidate / "infrared").is_dir():
            return candidate
    raise InputError(root, "no LLVIP tree here: expected infrared/{train,test}/, visible/{train,test}/ and "
                           "Annotations/", fix="pass the folder where LLVIP.zip was unpacked (LLVIP/)")


def pairs(root: Path, split: Split = "test") -> LlvipPairs:
    """Every infrared image of ``split`` (sorted by name) with its visible twin and annotation.

    An infrared image whose visible twin is missing is a :class:`Problem`; so is a visible image without an
    infrared one. A missing ``infrared/<split>/`` folder raises InputError naming it.
    """
    dataset = dataset_folder(root)
    infrared_folder, visible_folder = dataset / "infrared" / split, dataset / "visible" / split
    for folder in (infrared_folder, visible_folder):
        if not folder.is_dir():
            raise InputError(folder, f"LLVIP {split} folder missing",
                             fix="unpack LLVIP.zip unchanged: infrared/ and visible/, each with train/ and test/")
    infrared, visible = _images(infrared_folder), _images(visible_folder)
    annotations = dataset / "Annotations"
    result = LlvipPairs(pairs=[])
    for name, path in infrared.items():
        if name not in visible:
            result.problems.append(Problem(source=f"infrared/{split}/{path.name}",
                                           reason=f"no visible/{split}/{name}.* twin"))
            continue
        annotation = annotations / f"{name}.xml"
        result.pairs.append(LlvipPair(name, path, visible[name], annotation if annotation.is_file() else None))
    for name, path in visible.items():
        if name not in infrared:
            result.problems.append(Problem(source=f"visible/{split}/{path.name}",
                                           reason=f"no infrared/{split}/{name}.* twin"))
    return result


def _images(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def read_boxes(path: Path, names: tuple[str, ...] = ("person",)) -> list[Box]:
    """The boxes of objects named one of ``names`` in a VOC annotation; InputError naming the file otherwise."""
    try:
        tree = ElementTree.parse(path)
    except (ElementTree.ParseError, OSError) as error:
        raise InputError(path, f"cannot read the VOC annotation: {error}") from None
    boxes = []
    for number, obj in enumerate(tree.getroot().iter("object")):
        if (obj.findtext("name") or "").strip() not in names:
            continue
        try:
            values = [round(float(obj.findtext(f"bndbox/{k}") or "")) for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise InputError(path, f"object {number} has no numeric bndbox") from None
        boxes.append(Box(*values))
    return boxes


def background_box(width: int, height: int, image_shape: tuple[int, ...], persons: list[Box],
                   rng: np.random.Generator, attempts: int = 100) -> Box | None:
    """A ``width`` x ``height`` box at a uniformly random place of the image that overlaps no person box, or
    None when ``attempts`` draws all overlap one (or the box does not fit)."""
    rows, cols = image_shape[:2]
    if not (0 < width <= cols and 0 < height <= rows):
        return None
    for _ in range(attempts):
        x = int(rng.integers(0, cols - width + 1))
        y = int(rng.integers(0, rows - height + 1))
        candidate = Box(x, y, x + width, y + height)
        if not any(candidate.overlaps(person) for person in persons):
            return candidate
    return None


@dataclass
class LlvipCrops:
    """Person crops (label 0) and background crops (label 1) of the infrared images, in image order."""

    crops: list[np.ndarray]
    labels: list[int]
    sources: list[str]
    problems: list[Problem] = field(default_factory=list)


def person_and_background_crops(root: Path, split: Split = "test", seed: int = 0) -> LlvipCrops:
    """ImageBind's LLVIP protocol (App. A): every annotated person box of ``split``'s infrared images, plus
    for each one a box of the same size at a random place overlapping no person (seeded per image by ``seed``
    and the file name, so the crops do not depend on which other images are present)."""
    found = pairs(root, split)
    result = LlvipCrops(crops=[], labels=[], sources=[], problems=list(found.problems))
    for pair in found.pairs:
        where = f"infrared/{split}/{pair.infrared.name}"
        if pair.annotation is None:
            result.problems.append(Problem(source=where, reason=f"Annotations/{pair.name}.xml missing"))
            continue
        try:
            persons = read_boxes(pair.annotation)
            image = read_gray_image(pair.infrared)
        except InputError as error:
            result.problems.append(Problem(source=where, reason=str(error)))
            continue
        rng = np.random.default_rng([seed, zlib.crc32(pair.name.encode())])
        for number, person in enumerate(persons):
            box_source = f"{where} person {number} ({person.xmin},{person.ymin},{person.xmax},{person.ymax})"
            clipped = Box(max(person.xmin, 0), max(person.ymin, 0), min(person.xmax, image.shape[1]),
                          min(person.ymax, image.shape[0]))
            if clipped.width <= 0 or clipped.height <= 0:
                result.problems.append(Problem(source=box_source, reason="box lies outside the image"))
                continue
            result.crops.append(clipped.crop(image))
            result.labels.append(0)
            result.sources.append(box_source)
            background = background_box(clipped.width, clipped.height, image.shape, persons, rng)
            if background is None:
                result.problems.append(Problem(source=f"{box_source} background",
                                               reason="no same-size box free of persons found in 100 draws"))
                continue
            result.crops.append(background.crop(image))
            result.labels.append(1)
            result.sources.append(f"{where} background {number} ({background.xmin},{background.ymin},"
                                  f"{background.xmax},{background.ymax})")
    return result


__all__ = ["Box", "LlvipCrops", "LlvipPair", "LlvipPairs", "background_box", "dataset_folder", "pairs",
           "person_and_background_crops", "read_boxes"]
