"""Where the ImageBind parity vectors are, for the tests of the core and of every plugin.

Only the standard library and pytest: :mod:`bindcore.testing.pytest_plugin` loads this in every pytest run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Environment variable naming the parity-vector directory (overrides the default location).
PARITY_DIR_ENV = "BINDCORE_PARITY_DIR"


def parity_vectors_path() -> Path:
    """``$BINDCORE_PARITY_DIR``, else ``<repo root>/../shared/imagebind_vectors`` where the repo root is the
    checkout holding this (editable) bindcore; the directory may not exist."""
    repo_root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get(PARITY_DIR_ENV, repo_root.parent / "shared" / "imagebind_vectors"))


def parity_dir(*required: str) -> Path:
    """The parity-vector directory, for a test; ``pytest.skip`` with the path and how to set it when the
    directory, or any of the ``required`` paths relative to it (e.g. ``"small_model/state_dict.pt"``), is missing.
    """
    path = parity_vectors_path()
    missing = [name for name in required if not (path / name).exists()]
    if not path.is_dir() or missing:
        what = f" (missing {', '.join(missing)})" if missing and path.is_dir() else ""
        pytest.skip(f"ImageBind parity vectors not found at {path}{what} (set {PARITY_DIR_ENV})")
    return path
