"""Fixtures of the bind-thermal tests: tiny configs (CPU-fast), PNG writers and the ImageBind parity vectors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bind_thermal import ThermalModality
from PIL import Image

import bindcore.testing

TINY: dict[str, Any] = {"image_size": 32, "patch_size": 8, "width": 32, "num_layers": 1, "num_heads": 2,
                        "embed_dim": 16}


@pytest.fixture
def tiny_options() -> dict[str, Any]:
    return dict(TINY)


@pytest.fixture
def tiny_model() -> ThermalModality:
    return ThermalModality(**TINY)


@pytest.fixture
def write_png(tmp_path: Path) -> Callable[[np.ndarray, str], Path]:
    """Write a uint8/uint16 array as a grayscale PNG under ``tmp_path``."""

    def write(array: np.ndarray, name: str = "thermal.png") -> Path:
        path = tmp_path / name
        Image.fromarray(array).save(path)
        return path

    return write


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """The shared ImageBind vectors with the small reference model; skips when absent (bindcore's kit helper)."""
    return bindcore.testing.parity_dir("small_model/state_dict.pt")


def write_voc(path: Path, filename: str, width: int, height: int, boxes: list[tuple[str, int, int, int, int]]) -> None:
    """A VOC annotation as LLVIP writes them (folder, filename, size, one <object> per box)."""
    objects = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, x0, y0, x1, y1 in boxes)
    path.write_text(f"<annotation><folder>LLVIP</folder><filename>{filename}</filename><size><width>{width}"
                    f"</width><height>{height}</height><depth>3</depth></size>{objects}</annotation>")


@pytest.fixture
def voc_writer() -> Callable[..., None]:
    return write_voc


@pytest.fixture
def llvip_tree(tmp_path: Path) -> Path:
    """A tiny LLVIP tree (64x48 images): 190001 with two persons; 190002 whose person covers the image (no room
    for a background box); 190003 infrared only (no visible twin); 190004 without an annotation; one train pair."""
    root = tmp_path / "LLVIP"
    for sub in ("infrared/train", "infrared/test", "visible/train", "visible/test", "Annotations"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)

    def image(path: Path) -> None:  # infrared JPEGs are gray images saved as 3-channel RGB
        gray = rng.integers(0, 256, size=(48, 64), dtype=np.uint8)
        Image.fromarray(np.repeat(gray[..., None], 3, axis=2)).save(path, quality=95)

    for split, name in (("test", "190001"), ("test", "190002"), ("test", "190003"), ("test", "190004"),
                        ("train", "010001")):
        image(root / "infrared" / split / f"{name}.jpg")
        if name != "190003":
            image(root / "visible" / split / f"{name}.jpg")
    write_voc(root / "Annotations/190001.xml", "190001.jpg", 64, 48,
              [("person", 2, 3, 12, 23), ("person", 40, 10, 48, 30)])
    write_voc(root / "Annotations/190002.xml", "190002.jpg", 64, 48, [("person", 1, 1, 63, 47)])
    write_voc(root / "Annotations/190003.xml", "190003.jpg", 64, 48, [("person", 1, 1, 9, 9)])
    write_voc(root / "Annotations/010001.xml", "010001.jpg", 64, 48, [("person", 1, 1, 9, 9)])
    return root
