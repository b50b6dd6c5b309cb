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
