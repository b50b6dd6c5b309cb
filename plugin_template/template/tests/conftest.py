"""Fixtures of the {{distribution}} tests: a tiny config so everything runs in seconds on a CPU."""

from __future__ import annotations

from typing import Any

import pytest

from {{package}} import {{Name}}Modality

TINY: dict[str, Any] = {"grid_size": 16, "patch_size": 4, "width": 32, "num_layers": 1, "num_heads": 2, "embed_dim": 16}


@pytest.fixture
def tiny_model() -> {{Name}}Modality:
    return {{Name}}Modality(**TINY)
