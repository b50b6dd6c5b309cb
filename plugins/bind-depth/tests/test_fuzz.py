"""Fuzzed depth inputs (random and mutated file bytes, arrays of any dtype/shape/values): each one either gives
a finite tensor and a finite embedding, or raises a bindcore error. Derandomized, so CI sees the same examples."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from bind_depth import DepthInput, DepthModality
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from bindcore.testing.fuzz import FUZZ, assert_finite_or_typed, check_file, mutated_file

SUFFIXES = (".png", ".npy", ".tif", ".jpg", ".pgm")
DTYPES = ("uint8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64", "bool", "complex64")


def _valid_files() -> dict[str, bytes]:
    depth_mm = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 40) + 500
    png, npy = io.BytesIO(), io.BytesIO()
    Image.fromarray(depth_mm).save(png, format="PNG")
    np.save(npy, depth_mm.astype(np.float32) / 1000)
    return {".png": png.getvalue(), ".npy": npy.getvalue()}


VALID = _valid_files()
MUTATED = mutated_file(VALID)


@st.composite
def header_edited_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid PNG declaring any width and height (IHDR rewritten, CRC fixed), or a valid .npy with
    one character of its header replaced by one that matters to its parser."""
    if draw(st.booleans()):
        data = bytearray(VALID[".png"])
        data[16:24] = struct.pack(">II", draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1)))
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        return ".png", bytes(data)
    data = bytearray(VALID[".npy"])
    header_end = data.index(b"\n")
    data[draw(st.integers(8, header_end))] = draw(st.sampled_from(b"(){}[],:'\" 0123456789-e"))
    return ".npy", bytes(data)


arrays = hnp.arrays(dtype=st.sampled_from(DTYPES), shape=st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12),
    st.tuples(st.integers(1, 40), st.integers(1, 40))))


@pytest.fixture(scope="module")
def depth() -> DepthModality:
    return DepthModality(image_size=32, patch_size=8, width=32, num_layers=1, num_heads=2, embed_dim=16).eval()


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=1024))
def test_random_file_bytes(depth: DepthModality, suffix: str, data: bytes) -> None:
    check_file(depth, suffix, data, stem="depth")


@FUZZ
@given(file=MUTATED)
def test_mutated_valid_files(depth: DepthModality, file: tuple[str, bytes]) -> None:
    check_file(depth, *file, stem="depth")


@FUZZ
@given(array=arrays, as_tensor=st.booleans(), unit=st.sampled_from([None, 0.001, 1e-300, 1e300]))
def test_arrays_of_any_dtype_shape_and_values(depth: DepthModality, array: np.ndarray, as_tensor: bool,
                                              unit: float | None) -> None:
    data = torch.from_numpy(array.copy()) if as_tensor and array.dtype != np.uint16 else array
    assert_finite_or_typed(depth, DepthInput(data, metres_per_unit=unit) if unit else data)


@FUZZ
@given(file=header_edited_file())
def test_valid_files_with_edited_headers(depth: DepthModality, file: tuple[str, bytes]) -> None:
    check_file(depth, *file, stem="depth")
