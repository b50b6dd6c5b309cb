"""Fixtures of the bind-text tests: a tiny anchor (no downloads) and the shared parity vectors."""

from __future__ import annotations

from pathlib import Path

import pytest
from bind_text import TextModality

import bindcore.testing
from bindcore.anchor import tiny_anchor_config

TINY_ARCH = tiny_anchor_config(embed_dim=16, image_size=16, patch_size=8, width=32, layers=1, heads=2)


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The shared ImageBind parity vectors; skips when absent (bindcore's kit helper)."""
    return bindcore.testing.parity_dir("preprocessed/text_tokens.npy")


@pytest.fixture(scope="session")
def text() -> TextModality:
    return TextModality(anchor={"arch": TINY_ARCH})
