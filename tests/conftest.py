"""Fixtures shared by the core's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bindcore.plugins import set_registry
from bindcore.testing.stubs import stub_registry


@pytest.fixture
def stubs() -> Iterator[None]:
    """The registry holds the stub anchor towers and two stub modalities, ``toya`` and ``toyb``, for the test."""
    previous = set_registry(stub_registry("toya", "toyb"))
    yield
    set_registry(previous)
