"""Fuzzing a plugin's ``preprocess`` with hypothesis: the property every modality must hold (a finite tensor and a
finite embedding, or a bindcore error, never a raw exception), and strategies for damaged versions of valid files.
The first-party plugins' ``tests/test_fuzz.py`` use these; a new plugin can too."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bindcore.errors import BindcoreError

#: Derandomized, so CI sees the same examples every run; a fixed budget keeps the suite's time bounded.
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def mutated_file(valid: Mapping[str, bytes], *, header_bytes: int | None = 64,
                 values: st.SearchStrategy[int] | None = None) -> st.SearchStrategy[tuple[str, bytes]]:
    """``(suffix, bytes)``: one of the ``valid`` files (suffix → bytes) with up to 12 bytes overwritten and maybe its
    tail cut off. Half the positions fall in the first ``header_bytes`` (sizes, shapes; None: anywhere alike);
    ``values`` are the bytes written (default: any)."""
    written = values if values is not None else st.integers(0, 255)

    @st.composite
    def draw_file(draw: st.DrawFn) -> tuple[str, bytes]:
        suffix = draw(st.sampled_from(sorted(valid)))
        data = bytearray(valid[suffix])
        anywhere = st.integers(0, len(data) - 1)
        header = st.integers(0, min(header_bytes or len(data), len(data)) - 1)
        positions = anywhere if header_bytes is None else st.one_of(header, anywhere)
        for position, value in draw(st.lists(st.tuples(positions, written), min_size=1, max_size=12)):
            data[position] = value
        return suffix, bytes(data[: draw(st.integers(1, len(data)))])

    return draw_file()


def assert_finite_or_typed(modality: Any, item: object) -> None:
    """The fuzz property: a finite preprocessed tensor and embedding, or a BindcoreError (never a raw one)."""
    try:
        x = modality.preprocess([item])
    except BindcoreError:
        return
    assert torch.isfinite(x).all(), f"non-finite preprocessing of {item!r}"
    with torch.no_grad():
        assert torch.isfinite(modality.project(modality.encode(x))).all(), f"non-finite embedding of {item!r}"


def check_file(modality: Any, suffix: str, data: bytes, *, stem: str = "input") -> None:
    """:func:`assert_finite_or_typed` on ``data`` written to a file named ``stem + suffix``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{stem}{suffix}"
        path.write_bytes(data)
        assert_finite_or_typed(modality, path)


__all__ = ["FUZZ", "assert_finite_or_typed", "check_file", "mutated_file"]
