"""Vision preprocessing: ImageBind's resize/crop rules, image modes, and bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from bind_vision.image_io import to_rgb_image
from bind_vision.transforms import center_crop, resized_size
from PIL import Image

from bindcore.errors import InputError


@pytest.mark.parametrize(("size", "expected"), [
    ((640, 848), (224, 296)),   # dog asset (W, H): long side truncated, not rounded
    ((640, 360), (398, 224)),   # car asset
    ((640, 855), (224, 299)),   # bird asset
    ((150, 97), (346, 224)),    # upsampled: 224 * 150 / 97 = 346.39
    ((224, 224), (224, 224)),
])
def test_resize_keeps_torchvision_size_rule(size, expected) -> None:
    assert resized_size(*size, 224) == expected


def test_center_crop_rounds_half_to_even() -> None:
    pixels = np.arange(349 * 224).reshape(349, 224, 1)
    crop = center_crop(pixels, 224)
    assert crop.shape == (224, 224, 1)
    assert crop[0, 0, 0] == pixels[62, 0, 0]  # (349 - 224) / 2 = 62.5 -> 62, not 63
    assert center_crop(np.arange(351 * 224).reshape(351, 224, 1), 224)[0, 0, 0] == 64 * 224  # 63.5 -> 64


def test_center_crop_pads_small_images_with_zeros() -> None:
    crop = center_crop(np.full((3, 4, 3), 7, np.uint8), 6)
    assert crop.shape == (6, 6, 3)
    assert crop[1:4, 1:5].min() == 7 and crop.sum() == 7 * 3 * 4 * 3


def _mode_image(mode: str) -> Image.Image:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    if mode == "P-transparent":
        image = rgb.convert("P")
        image.info["transparency"] = 3
        return image
    return rgb.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "P-transparent", "PA", "RGBA", "CMYK", "YCbCr", "I", "F"])
def test_every_common_mode_is_converted(vision_32, mode: str) -> None:
    x = vision_32.preprocess([_mode_image(mode)])
    assert x.shape == (1, 3, 32, 32) and x.dtype == torch.float32 and torch.isfinite(x).all()


def test_grayscale_becomes_three_equal_channels(vision_32) -> None:
    gray = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40), dtype=np.uint8))
    rgb = to_rgb_image(gray)
    assert rgb.mode == "RGB"
    pixels = np.asarray(rgb)
    assert np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], np.asarray(gray))


def test_rgba_drops_alpha_without_compositing() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red stays red (as PIL convert("RGB"))
    assert np.asarray(to_rgb_image(rgba))[0, 0].tolist() == [200, 0, 0]


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path) -> None:
    values = np.array([[0, 4000], [32896, 65535]], dtype=np.uint16)
    path = tmp_path / "sixteen.png"
    Image.fromarray(values).save(path)
    expected = [[0, 16], [128, 255]]  # value / 257, rounded
    for item in (path, Image.open(path), values):
        pixels = np.asarray(to_rgb_image(item))
        assert pixels[..., 0].tolist() == expected, type(item).__name__
        assert np.array_equal(pixels[..., 0], pixels[..., 2])


def test_cmyk_jpeg_file_is_converted(tmp_path, vision_32) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(path)
    x = vision_32.preprocess([path])
    assert x.shape == (1, 3, 32, 32)
    mean = torch.tensor(vision_32.config.mean).view(3, 1, 1)
    std = torch.tensor(vision_32.config.std).view(3, 1, 1)
    pixels = (x[0] * std + mean).mean(dim=(1, 2))
    assert pixels[0] > 0.8 and pixels[1] < 0.2 and pixels[2] < 0.2  # CMYK (0,255,255,0) is red


def test_float_and_uint8_arrays_agree(vision_32) -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    a = vision_32.preprocess([pixels, pixels.astype(np.float64) / 255.0, pixels[..., :1], pixels[..., 0]])
    assert torch.equal(a[0], a[1])
    assert torch.equal(a[2], a[3])


def _truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    path = tmp_path / "truncated.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.mark.parametrize(("make", "reason"), [
    (lambda tmp: tmp / "missing.jpg", "file not found"),
    (_truncated_jpeg, "truncated or corrupt"),
    (lambda tmp: (tmp / "notes.txt").write_text("not an image") and tmp / "notes.txt", "not an image file"),
    (lambda tmp: tmp, "not a file"),
    (lambda tmp: Image.new("RGB", (0, 0)), "empty image"),
    (lambda tmp: np.zeros((0, 5, 3), np.uint8), "empty image"),
    (lambda tmp: np.zeros((4, 4, 5), np.uint8), "wrong shape"),
    (lambda tmp: np.zeros((2, 4, 4, 3), np.uint8), "wrong shape"),
    (lambda tmp: np.full((4, 4), 1.5, np.float32), "outside [0, 1]"),
    (lambda tmp: np.full((4, 4), np.nan, np.float32), "NaN"),
    (lambda tmp: np.full((4, 4), 300, np.int32), "outside 0..255"),
    (lambda tmp: {"not": "an image"}, "not an image (dict)"),
    (lambda tmp: 42, "not an image (int)"),
    (lambda tmp: None, "not an image (NoneType)"),
])
def test_bad_input_is_rejected_naming_the_item(vision_32, tmp_path, make, reason: str) -> None:
    item = make(tmp_path)
    good = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(InputError) as info:
        vision_32.preprocess([good, item])
    assert reason in str(info.value)
    assert info.value.item is item
    if isinstance(item, type(tmp_path)):
        assert str(item) in str(info.value)


@pytest.mark.parametrize("bare", ["dog.jpg", np.zeros((8, 8, 3), np.uint8), Image.new("RGB", (4, 4))])
def test_a_bare_item_must_be_wrapped_in_a_list(vision_32, bare) -> None:
    with pytest.raises(InputError, match="wrap it in a list"):
        vision_32.preprocess(bare)


def test_empty_batch(vision_32) -> None:
    assert vision_32.preprocess([]).shape == (0, 3, 32, 32)


# -- layouts: fixed by type (numpy HWC, torch CHW), never guessed from the shape ------------------------------
def test_a_channels_first_numpy_array_is_rejected_with_the_fix(vision_32) -> None:
    item = np.zeros((3, 224, 224), np.uint8)  # CHW: read as HWC its "channel" axis has 224 entries
    with pytest.raises(InputError) as info:
        vision_32.preprocess([item])
    assert info.value.item is item
    assert "(3, 224, 224)" in str(info.value) and "numpy arrays are (H, W) or (H, W, C)" in str(info.value)
    assert "np.moveaxis(array, 0, -1)" in str(info.value)
    assert torch.equal(vision_32.preprocess([np.moveaxis(item, 0, -1)]), vision_32.preprocess([item[0]]))


def test_a_channels_last_tensor_is_rejected_with_the_fix(vision_32) -> None:
    item = torch.rand(24, 20, 3)  # HWC: read as CHW it has 24 channels
    with pytest.raises(InputError) as info:
        vision_32.preprocess([item])
    assert info.value.item is item
    assert "(24, 20, 3)" in str(info.value) and "torch tensors are (H, W) or (C, H, W)" in str(info.value)
    assert "tensor.permute(2, 0, 1)" in str(info.value)
    assert vision_32.preprocess([item.permute(2, 0, 1)]).shape == (1, 3, 32, 32)


def test_an_ambiguous_shape_takes_the_documented_layout(vision_32) -> None:
    """(3, 8, 3) fits both layouts: a numpy array is 3 rows × 8 columns of RGB, a tensor 3 channels of 8 × 3."""
    pixels = np.random.default_rng(0).integers(0, 256, (3, 8, 3), dtype=np.uint8)
    as_array = vision_32.preprocess([pixels])
    as_tensor = vision_32.preprocess([torch.from_numpy(pixels)])
    assert torch.equal(as_array, vision_32.preprocess([Image.fromarray(pixels)]))  # 8 wide, 3 tall
    assert torch.equal(as_tensor, vision_32.preprocess([Image.fromarray(np.moveaxis(pixels, 0, -1))]))  # 3 wide
    assert not torch.equal(as_array, as_tensor)
