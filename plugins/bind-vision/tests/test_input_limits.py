"""Image files that are too large, decompression bombs, over-long paths: each an InputError naming the item."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from bind_vision.image_io import to_rgb_image
from PIL import Image

from bindcore import InputError


def png_declaring(path: Path, width: int, height: int, mode: str = "I;16") -> Path:
    """A PNG whose header says ``width`` x ``height`` but whose data is a 2x2 image's (a few hundred bytes)."""
    Image.new(mode, (2, 2)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _error(vision, items: list) -> str:
    with pytest.raises(InputError) as info:
        vision.preprocess(items)
    return str(info.value)


def test_png_larger_than_max_pixels_is_refused_from_its_header(vision_32, tmp_path: Path) -> None:
    message = _error(vision_32, [png_declaring(tmp_path / "huge.png", 12000, 12000)])
    assert "huge.png" in message and "144,000,000" in message and "max_pixels" in message


def test_decompression_bomb_is_an_input_error(tmp_path: Path) -> None:
    # 400 MP: Pillow refuses it in Image.open, before any limit of ours could look at it.
    with pytest.raises(InputError, match=r"bomb\.png.*Pillow"):
        to_rgb_image(png_declaring(tmp_path / "bomb.png", 20000, 20000, mode="L"), max_pixels=10**9)


def test_lazily_opened_pil_image_is_checked_before_it_is_decoded(tmp_path: Path) -> None:
    with Image.open(png_declaring(tmp_path / "huge.png", 12000, 12000)) as image:
        with pytest.raises(InputError, match="max_pixels"):
            to_rgb_image(image)


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    with pytest.raises(InputError, match="max_pixels=1,000"):
        to_rgb_image(path, max_pixels=1000)
    assert to_rgb_image(path, max_pixels=1600).size == (40, 40)


def test_path_longer_than_the_file_system_allows_is_an_input_error(vision_32, tmp_path: Path) -> None:
    path = tmp_path / ("x" * 300 + ".png")  # one 304-character name: ENAMETOOLONG
    assert "xxx.png" in _error(vision_32, [path])


def test_sixteen_bit_scaling_is_exact_in_integers() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    expected = np.floor(values.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    pixels = np.asarray(to_rgb_image(Image.fromarray(values)))
    np.testing.assert_array_equal(pixels[..., 0], expected)
