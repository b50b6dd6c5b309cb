"""Fixtures of the bind-imu tests: tiny configs (CPU-fast) and the shared ImageBind parity vectors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from bind_imu import ImuConfig, ImuModality

TINY: dict[str, Any] = {
    "embed_dim": 16, "width": 32, "num_layers": 1, "num_heads": 2,
    "window_seconds": 1.0, "window_steps": 200, "default_sample_rate": 200.0, "num_windows": 2,
}


@pytest.fixture
def tiny_options() -> dict[str, Any]:
    return dict(TINY)


@pytest.fixture
def tiny_config() -> ImuConfig:
    return ImuConfig(**TINY)


@pytest.fixture
def tiny_model() -> ImuModality:
    return ImuModality(**TINY)


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """``$BINDCORE_PARITY_DIR`` or ``<repo>/../shared/imagebind_vectors``; skips when absent."""
    repo_root = Path(__file__).resolve().parents[3]
    path = Path(os.environ.get("BINDCORE_PARITY_DIR", repo_root.parent / "shared" / "imagebind_vectors"))
    if not (path / "small_model" / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {path} (set BINDCORE_PARITY_DIR)")
    return path
