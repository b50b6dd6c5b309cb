"""bindcore.imageio: reading single-channel maps, shape checks, resize/crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bindcore import InputError
from bindcore.imageio import (
    as_item_list,
    read_gray_image,
    read_npy,
    require_finite,
    resize_center_crop,
    single_channel,
    to_numpy,
)


@pytest.mark.parametrize(("array", "dtype"), [
    (np.arange(64, dtype=np.uint8).reshape(8, 8), np.uint8),
    (np.arange(0, 64000, 1000, dtype=np.uint16).reshape(8, 8), np.uint16),
])
def test_gray_images_keep_their_bit_depth(tmp_path, array, dtype):
    Image.fromarray(array).save(tmp_path / "a.png")
    read = read_gray_image(tmp_path / "a.png")
    assert read.dtype == dtype
    np.testing.assert_array_equal(read, array)


def test_float_tiff_and_gray_rgb(tmp_path):
    values = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(values).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_gray_image(tmp_path / "f.tif"), values)
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(np.stack([gray] * 3 + [np.full_like(gray, 255)], -1)).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_gray_image(tmp_path / "rgba.png"), gray)


def test_unreadable_files_name_the_item(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"bad\.png.*cannot decode") as info:
        read_gray_image(tmp_path / "bad.png")
    assert info.value.item == tmp_path / "bad.png"
    with pytest.raises(InputError, match="file not found"):
        read_gray_image(tmp_path / "missing.png")
    (tmp_path / "bad.npy").write_bytes(b"nope")
    with pytest.raises(InputError, match=r"cannot read as \.npy"):
        read_npy(tmp_path / "bad.npy")


def test_single_channel_shapes():
    assert single_channel("x", np.zeros((1, 4, 5))).shape == (4, 5)
    with pytest.raises(InputError, match="several channels"):
        single_channel("x", np.zeros((3, 4, 5)))
    with pytest.raises(InputError, match="too small"):
        single_channel("x", np.zeros((1, 9)))


def test_require_finite_and_to_numpy():
    require_finite("x", np.ones(3, np.uint8))
    with pytest.raises(InputError, match="1 of 3 values"):
        require_finite("x", np.array([1.0, np.inf, 2.0]))
    half = torch.ones(2, 2, dtype=torch.bfloat16, requires_grad=True)
    assert to_numpy("x", half).dtype == np.float32


def test_as_item_list_rejects_single_items():
    assert as_item_list((a for a in [1, 2]), where="m") == [1, 2]
    for single in ("a.png", np.zeros((4, 4)), torch.zeros(4, 4)):
        with pytest.raises(InputError, match="sequence of items"):
            as_item_list(single, where="m")


def test_resize_center_crop():
    square = torch.rand(8, 8)
    assert resize_center_crop(square, 8) is square
    tall = torch.arange(16 * 8, dtype=torch.float32).reshape(16, 8)
    assert torch.equal(resize_center_crop(tall, 8), tall[4:12])
    assert resize_center_crop(torch.rand(5, 7), 16).shape == (16, 16)
    assert resize_center_crop(torch.rand(300, 200), 16).shape == (16, 16)
    torch.testing.assert_close(resize_center_crop(torch.full((300, 200), 2.5), 16), torch.full((16, 16), 2.5))
