"""Files whose headers promise more than they hold, or cannot be parsed, are InputErrors before decoding."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from bind_thermal import ThermalConfig
from bind_thermal.preprocess import preprocess_batch
from PIL import Image

from bindcore import InputError


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A 16-bit PNG whose header says ``width`` x ``height`` but whose data is a 2x2 image's (a few hundred bytes)."""
    Image.fromarray(np.full((2, 2), 1000, np.uint16)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


#: A tiny 32-px config (preprocessing only; the encoder sizes do not matter here).
TINY = {"image_size": 32, "patch_size": 8}


def _error(item: object, **options: object) -> str:
    with pytest.raises(InputError) as info:
        preprocess_batch([item], ThermalConfig(**TINY, **options))
    return str(info.value)


def test_png_larger_than_max_pixels_is_refused_from_its_header(tmp_path: Path) -> None:
    message = _error(png_declaring(tmp_path / "huge.png", 12000, 12000))
    assert "huge.png" in message and "144,000,000" in message and "max_pixels" in message


def test_png_beyond_pillows_bomb_limit_is_an_input_error(tmp_path: Path) -> None:
    # 400 MP: Pillow itself refuses it in Image.open (DecompressionBombError), even with max_pixels raised.
    message = _error(png_declaring(tmp_path / "bomb.png", 20000, 20000), max_pixels=10**9)
    assert "bomb.png" in message and "Pillow" in message


def test_max_pixels_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "d.png"
    Image.fromarray(np.full((40, 40), 1000, np.uint16)).save(path)
    assert "max_pixels=1,000" in _error(path, max_pixels=1000)
    assert preprocess_batch([path], ThermalConfig(**TINY, max_pixels=1600)).shape == (1, 1, 32, 32)


@pytest.mark.parametrize("edit", [
    lambda h: h.replace(b"(4, 4)", b"(4, 4 "),   # tokenize.TokenError inside numpy's header parser
    lambda h: h.replace(b"}", b"{"),
    lambda h: h.replace(b"'descr'", b"'descr\""),
    lambda h: h[:20],
])
def test_npy_with_malformed_header_is_an_input_error(tmp_path: Path, edit) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.ones((4, 4), np.float32))
    path.write_bytes(edit(path.read_bytes()))
    assert "d.npy" in _error(path)


def test_npy_declaring_more_data_than_the_file_holds_is_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.ones((4, 4), np.float32))
    header = path.read_bytes()  # the same header length: 12 more characters in the shape, 12 fewer spaces
    path.write_bytes(header.replace(b"(4, 4), }", b"(3000000, 3000000), }").replace(b" " * 12 + b"\n", b"\n", 1))
    message = _error(path, max_pixels=10**13)
    assert "d.npy" in message and "the file holds 64 bytes" in message


def test_npy_larger_than_max_pixels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.ones((50, 50), np.float32))
    assert "max_pixels=1,000" in _error(path, max_pixels=1000)
