"""Fuzzed thermal inputs (random and mutated file bytes, arrays of any dtype/shape/values): each one either gives
a finite tensor and a finite embedding, or raises a bindcore error. Derandomized, so CI sees the same examples."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from bind_thermal import ThermalModality
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from bindcore.testing.fuzz import FUZZ, assert_finite_or_typed, check_file, mutated_file

SUFFIXES = (".png", ".npy", ".tif", ".jpg", ".pgm")
DTYPES = ("uint8", "uint16", "int16", "int32", "int64", "float16", "float32", "float64", "bool", "complex64")


def _valid_files() -> dict[str, bytes]:
    frame = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 900) + 1000
    png16, png8, npy = io.BytesIO(), io.BytesIO(), io.BytesIO()
    Image.fromarray(frame).save(png16, format="PNG")
    Image.fromarray((frame // 257).astype(np.uint8)).save(png8, format="PNG")
    np.save(npy, frame.astype(np.float32) / 65535)
    return {".png": png16.getvalue(), ".jpg": png8.getvalue(), ".npy": npy.getvalue()}


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
def thermal() -> ThermalModality:
    return ThermalModality(image_size=32, patch_size=8, width=32, num_layers=1, num_heads=2, embed_dim=16).eval()


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=1024))
def test_random_file_bytes(thermal: ThermalModality, suffix: str, data: bytes) -> None:
    check_file(thermal, suffix, data, stem="thermal")


@FUZZ
@given(file=MUTATED)
def test_mutated_valid_files(thermal: ThermalModality, file: tuple[str, bytes]) -> None:
    check_file(thermal, *file, stem="thermal")


@pytest.fixture(scope="module", params=["dtype", "minmax", "percentile"])
def thermal_scaled(request: pytest.FixtureRequest) -> ThermalModality:
    return ThermalModality(image_size=32, patch_size=8, width=32, num_layers=1, num_heads=2, embed_dim=16,
                           scaling=request.param, normalization="standardize").eval()


@settings(FUZZ, max_examples=30)
@given(array=arrays, as_tensor=st.booleans())
def test_arrays_of_any_dtype_shape_and_values(thermal_scaled: ThermalModality, array: np.ndarray,
                                              as_tensor: bool) -> None:
    data = torch.from_numpy(array.copy()) if as_tensor and array.dtype != np.uint16 else array
    assert_finite_or_typed(thermal_scaled, data)


@FUZZ
@given(file=header_edited_file())
def test_valid_files_with_edited_headers(thermal: ThermalModality, file: tuple[str, bytes]) -> None:
    check_file(thermal, *file, stem="thermal")
