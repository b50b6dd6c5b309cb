"""Fuzzed image inputs (random and mutated file bytes, arrays and tensors of any dtype/shape/values): each one
either gives a finite tensor and a finite embedding, or raises a bindcore error. Derandomized, so CI sees the same
examples."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import torch
from bind_vision import VisionModality
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from bindcore.testing.fuzz import FUZZ, assert_finite_or_typed, check_file, mutated_file

SUFFIXES = (".png", ".jpg", ".bmp", ".gif", ".tif", ".webp")
DTYPES = ("uint8", "uint16", "int8", "int32", "float16", "float32", "float64", "bool", "complex64")


def _valid_files() -> dict[str, bytes]:
    pixels = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    files = {}
    for suffix, image in ((".png", Image.fromarray(pixels)), (".jpg", Image.fromarray(pixels)),
                          (".gif", Image.fromarray(pixels).convert("P")),
                          (".tif", Image.fromarray(pixels[..., 0].astype(np.uint16) * 257))):
        buffer = io.BytesIO()
        image.save(buffer, format={".jpg": "JPEG", ".tif": "TIFF"}.get(suffix, suffix[1:].upper()))
        files[suffix] = buffer.getvalue()
    return files


VALID = _valid_files()
MUTATED = mutated_file(VALID)


@st.composite
def header_edited_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid PNG declaring any width and height (IHDR rewritten, CRC fixed)."""
    data = bytearray(VALID[".png"])
    data[16:24] = struct.pack(">II", draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1)))
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return ".png", bytes(data)


arrays = hnp.arrays(dtype=st.sampled_from(DTYPES), shape=st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12),
    st.tuples(st.integers(1, 24), st.integers(1, 24), st.sampled_from([1, 2, 3, 4]))))


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=1024))
def test_random_file_bytes(vision_32: VisionModality, suffix: str, data: bytes) -> None:
    check_file(vision_32, suffix, data, stem="image")


@FUZZ
@given(file=MUTATED)
def test_mutated_valid_files(vision_32: VisionModality, file: tuple[str, bytes]) -> None:
    check_file(vision_32, *file, stem="image")


@FUZZ
@given(array=arrays, kind=st.sampled_from(["numpy", "tensor", "bfloat16", "pil"]))
def test_arrays_tensors_and_pil_images_of_any_dtype_shape_and_values(vision_32: VisionModality, array: np.ndarray,
                                                                     kind: str) -> None:
    item: object = array
    if kind == "tensor" and array.dtype != np.uint16:
        item = torch.from_numpy(array.copy())
    elif kind == "bfloat16" and array.dtype.kind == "f":
        item = torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    elif kind == "pil" and array.dtype in (np.uint8, np.float32) and array.ndim == 2 and array.size:
        item = Image.fromarray(array)
    assert_finite_or_typed(vision_32, item)


@FUZZ
@given(file=header_edited_file())
def test_valid_files_with_edited_headers(vision_32: VisionModality, file: tuple[str, bytes]) -> None:
    check_file(vision_32, *file, stem="image")
