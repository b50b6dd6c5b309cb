"""Fixtures of the bind-imu tests: tiny configs (CPU-fast) and the shared ImageBind parity vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bind_imu import ImuConfig, ImuModality

import bindcore.testing

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
    """The shared ImageBind vectors with the small reference model; skips when absent (bindcore's kit helper)."""
    return bindcore.testing.parity_dir("small_model/state_dict.pt")
