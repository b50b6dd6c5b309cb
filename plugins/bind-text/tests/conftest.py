"""Fixtures of the bind-text tests: a tiny anchor (no downloads) and the shared parity vectors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bind_text import TextModality

from bindcore.anchor import tiny_anchor_config

REPO_ROOT = Path(__file__).resolve().parents[3]
TINY_ARCH = tiny_anchor_config(embed_dim=16, image_size=16, patch_size=8, width=32, layers=1, heads=2)


def parity_dir() -> Path:
    return Path(os.environ.get("BINDCORE_PARITY_DIR", REPO_ROOT.parent / "shared" / "imagebind_vectors"))


@pytest.fixture(scope="session")
def vectors() -> Path:
    path = parity_dir()
    if not (path / "preprocessed" / "text_tokens.npy").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {path} (set BINDCORE_PARITY_DIR)")
    return path


@pytest.fixture(scope="session")
def text() -> TextModality:
    return TextModality(anchor={"arch": TINY_ARCH})
