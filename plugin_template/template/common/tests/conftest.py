"""Fixtures of the {{distribution}} tests: the plugin's TINY config, so everything runs in seconds on a CPU."""

from __future__ import annotations

import pytest

from {{package}} import TINY, {{Name}}Modality


@pytest.fixture
def tiny_model() -> {{Name}}Modality:
    return {{Name}}Modality(**TINY)
