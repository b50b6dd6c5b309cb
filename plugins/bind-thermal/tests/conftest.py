"""Fixtures of the bind-thermal tests: tiny configs (CPU-fast), PNG writers and the ImageBind parity vectors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bind_thermal import ThermalModality
from PIL import Image

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
    """``$BINDCORE_PARITY_DIR`` or ``<repo>/../shared/imagebind_vectors``; skips when absent."""
    repo_root = Path(__file__).resolve().parents[3]
    path = Path(os.environ.get("BINDCORE_PARITY_DIR", repo_root.parent / "shared" / "imagebind_vectors"))
    if not (path / "small_model" / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {path} (set BINDCORE_PARITY_DIR)")
    return path
