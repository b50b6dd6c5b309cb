"""Fixtures of the bind-depth tests: tiny configs (CPU-fast), PNG writers and the ImageBind parity vectors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bind_depth import DepthModality
from PIL import Image

import bindcore.testing

TINY: dict[str, Any] = {"image_size": 32, "patch_size": 8, "width": 32, "num_layers": 1, "num_heads": 2,
                        "embed_dim": 16}


@pytest.fixture
def tiny_options() -> dict[str, Any]:
    return dict(TINY)


@pytest.fixture
def tiny_model() -> DepthModality:
    return DepthModality(**TINY)


@pytest.fixture
def write_png(tmp_path: Path) -> Callable[[np.ndarray, str], Path]:
    """Write a uint8/uint16 array as a grayscale PNG under ``tmp_path``."""

    def write(array: np.ndarray, name: str = "depth.png") -> Path:
        path = tmp_path / name
        Image.fromarray(array).save(path)
        return path

    return write


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """The shared ImageBind vectors with the small reference model; skips when absent (bindcore's kit helper)."""
    return bindcore.testing.parity_dir("small_model/state_dict.pt")


def write_sunrgbd_frame(dataset: Path, name: str, scene: str | None, millimetres: np.ndarray,
                        focal_length: float = 529.5, depth_folder: str = "depth_bfx") -> Path:
    """One scene folder of the SUN RGB-D v1 tree under ``dataset`` (the SUNRGBD/ folder): image/<id>.jpg,
    <depth_folder>/<id>.png (millimetres rotated left by 3 bits, as the dataset stores them), intrinsics.txt
    (3x3, row-major, as the dataset writes it), scene.txt (skipped when ``scene`` is None)."""
    folder = dataset / name
    frame = name.rsplit("/", 1)[-1]
    (folder / "image").mkdir(parents=True)
    (folder / depth_folder).mkdir()
    height, width = millimetres.shape
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(folder / "image" / f"{frame}.jpg")
    mm = millimetres.astype(np.uint16)
    Image.fromarray((mm << 3) | (mm >> 13)).save(folder / depth_folder / f"{frame}.png")
    (folder / "intrinsics.txt").write_text(f"{focal_length} 0 {width / 2}\n0 {focal_length} {height / 2}\n0 0 1\n")
    if scene is not None:
        (folder / "scene.txt").write_text(scene)
    return folder


def write_allsplit(root: Path, train: list[str], test: list[str]) -> Path:
    """SUNRGBDtoolbox/traintestSUNRGBD/allsplit.mat with the authors' absolute paths, as cell arrays."""
    from scipy.io import savemat

    path = root / "SUNRGBDtoolbox" / "traintestSUNRGBD" / "allsplit.mat"
    path.parent.mkdir(parents=True)
    cells = {key: np.array([f"/n/fs/sun3d/data/SUNRGBD/{name}" for name in names], dtype=object)
             for key, names in (("alltrain", train), ("alltest", test))}
    savemat(path, cells)
    return path


@pytest.fixture
def sunrgbd_tree(tmp_path: Path) -> Path:
    """A tiny SUN RGB-D tree: four frames of four sensors at the real folder depths, a split file listing
    four test frames (one of them missing on disk) and one train frame."""
    dataset = tmp_path / "SUNRGBD"
    mm = np.full((8, 12), 2000, np.uint16)
    write_sunrgbd_frame(dataset, "kv1/NYUdata/NYU0001", "bedroom", mm, focal_length=518.857901)
    write_sunrgbd_frame(dataset, "kv2/kinect2data/000002_2014-05-26_14-23-37_260595134347_rgbf000103-resize",
                        "office", mm * 2, focal_length=529.5)
    write_sunrgbd_frame(dataset, "realsense/lg/2014_10_24-13_32_52-1311000073", "study_space", mm,
                        focal_length=570.3, depth_folder="depth")
    write_sunrgbd_frame(dataset, "xtion/sun3ddata/mit_32_d507/d507_2/0000051-000001713", "corridor", mm,
                        focal_length=570.3)
    write_allsplit(tmp_path, train=["xtion/sun3ddata/mit_32_d507/d507_2/0000051-000001713"],
                   test=["kv2/kinect2data/000002_2014-05-26_14-23-37_260595134347_rgbf000103-resize",
                         "kv1/b3dodata/img_0063", "kv1/NYUdata/NYU0001", "realsense/lg/2014_10_24-13_32_52-1311000073"])
    return tmp_path


@pytest.fixture
def sunrgbd_frame_writer() -> Callable[..., Path]:
    return write_sunrgbd_frame
