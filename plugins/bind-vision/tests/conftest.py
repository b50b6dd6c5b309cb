"""Fixtures of the bind-vision tests: tiny anchors (no downloads) and the shared parity vectors."""

from __future__ import annotations

from pathlib import Path

import pytest
from bind_vision import VisionModality

import bindcore.testing
from bindcore.anchor import tiny_anchor_config


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The shared ImageBind parity vectors; skips when absent (bindcore's kit helper)."""
    return bindcore.testing.parity_dir("preprocessed/vision")


@pytest.fixture(scope="session")
def vision_224() -> VisionModality:
    """ImageBind's 224-px preprocessing on a tiny anchor whose image tower takes 224 px (7x7 patches)."""
    return VisionModality(anchor={"arch": tiny_anchor_config(embed_dim=16, image_size=224, patch_size=32,
                                                             width=32, layers=1, heads=2)})


@pytest.fixture(scope="session")
def vision_32() -> VisionModality:
    """A tiny 32-px vision modality, as the toy-world demo uses."""
    return VisionModality(anchor={"arch": tiny_anchor_config(embed_dim=16, image_size=32, patch_size=8,
                                                             width=32, layers=1, heads=2)})
