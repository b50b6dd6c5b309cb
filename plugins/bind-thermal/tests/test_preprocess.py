"""Thermal preprocessing: bit depths, [0, 1] scaling modes, resize/crop, optional standardisation, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bind_thermal import ThermalModality
from bind_thermal.config import CLIP_CHANNEL_MEAN, CLIP_CHANNEL_STD
from PIL import Image

from bindcore import ConfigError, InputError


def model(tiny_options, **options) -> ThermalModality:
    return ThermalModality(**{**tiny_options, **options})


def test_8bit_png_is_divided_by_255_exactly(tiny_options, write_png):
    frame = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    out = model(tiny_options).preprocess([write_png(frame)])
    assert out.shape == (1, 1, 32, 32) and out.dtype == torch.float32
    assert torch.equal(out[0, 0], torch.from_numpy(frame).float() / 255)


def test_16bit_png_and_tiff_use_the_full_16bit_scale(tiny_options, write_png, tmp_path):
    frame = np.random.default_rng(1).integers(0, 65536, (32, 32)).astype(np.uint16)
    Image.fromarray(frame).save(tmp_path / "t.tif")
    m = model(tiny_options)
    expected = torch.from_numpy(frame.astype(np.float32) / 65535)
    torch.testing.assert_close(m.preprocess([write_png(frame)])[0, 0], expected)
    torch.testing.assert_close(m.preprocess([tmp_path / "t.tif"])[0, 0], expected)


def test_gray_rgb_files_become_one_channel_but_colour_is_rejected(tiny_options, tmp_path):
    gray = np.random.default_rng(2).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "ir.png")  # LLVIP-style 3×gray
    m = model(tiny_options)
    assert torch.equal(m.preprocess([tmp_path / "ir.png"])[0, 0], torch.from_numpy(gray).float() / 255)
    colour = np.stack([gray, 255 - gray, gray], -1)
    Image.fromarray(colour).save(tmp_path / "false_colour.png")
    with pytest.raises(InputError, match="colour channels differ"):
        m.preprocess([tmp_path / "false_colour.png"])


def test_arrays_tensors_npy_agree(tiny_options, tmp_path):
    frame = np.random.default_rng(3).integers(0, 256, (40, 48), dtype=np.uint8)
    np.save(tmp_path / "t.npy", frame)
    m = model(tiny_options)
    ref = m.preprocess([frame])
    torch.testing.assert_close(m.preprocess([torch.from_numpy(frame)]), ref)
    torch.testing.assert_close(m.preprocess([tmp_path / "t.npy"]), ref)
    torch.testing.assert_close(m.preprocess([frame[None]]), ref)
    torch.testing.assert_close(m.preprocess([frame.astype(np.float64) / 255]), ref)
    assert m.preprocess([]).shape == (0, 1, 32, 32)


def test_minmax_and_percentile_scaling(tiny_options):
    raw = np.linspace(51000, 52000, 32 * 32).reshape(32, 32).astype(np.uint16)  # radiometric counts
    minmax = model(tiny_options, scaling="minmax").preprocess([raw])[0, 0]
    assert minmax.min() == 0 and minmax.max() == 1
    spiky = raw.copy()
    spiky[0, 0] = 65535  # one dead pixel must not squash the rest
    pct = model(tiny_options, scaling="percentile").preprocess([spiky])[0, 0]
    assert pct[16, 16] > 0.4 and pct[0, 0] == 1
    assert model(tiny_options, scaling="minmax").preprocess([np.full((8, 8), 7.0)]).abs().max() == 0
    floats = model(tiny_options, scaling="minmax").preprocess([np.linspace(-5, 5, 64).reshape(8, 8)])
    assert floats.min() == 0 and floats.max() == 1


def test_standardize_option(tiny_options):
    frame = np.full((32, 32), 128, np.uint8)
    out = model(tiny_options, normalization="standardize").preprocess([frame])
    torch.testing.assert_close(out, torch.full_like(out, (128 / 255 - CLIP_CHANNEL_MEAN) / CLIP_CHANNEL_STD))
    custom = model(tiny_options, normalization="standardize", norm_mean=0.5, norm_std=0.25).preprocess([frame])
    torch.testing.assert_close(custom, torch.full_like(out, (128 / 255 - 0.5) / 0.25))


def test_resize_shorter_side_then_centre_crop(tiny_options):
    wide = np.tile(np.arange(64, dtype=np.uint8), (32, 1))
    out = model(tiny_options).preprocess([wide])[0, 0]
    assert torch.equal(out, torch.from_numpy(wide[:, 16:48]).float() / 255)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.full((32, 32), 1.5), "outside"),
        (np.full((32, 32), np.nan), "NaN or infinite"),
        (np.full((32, 32), 7, np.int64), "no defined full scale"),
        (np.ones((32, 32), bool), "unsupported dtype"),
        (np.ones((1, 1), np.uint8), "too small"),
        (np.ones((32, 32, 3), np.uint8), "wrong shape"),
        (np.ones((3, 32, 32), np.uint8), "several channels"),
        (torch.ones(32, 32, dtype=torch.complex64), "complex"),
        ({"frame": 1}, "unsupported thermal input type dict"),
        ("thermal.raw", "unsupported file type"),
        ("missing.png", "file not found"),
    ],
)
def test_bad_items_raise_input_error_naming_the_item(tiny_options, bad, message):
    with pytest.raises(InputError, match=message) as info:
        model(tiny_options).preprocess([np.zeros((32, 32), np.uint8), bad])
    assert info.value.item is bad


def test_corrupt_png(tiny_options, tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)
    with pytest.raises(InputError, match=r"broken\.png.*cannot decode"):
        model(tiny_options).preprocess([path])


def test_single_item_instead_of_a_list(tiny_options):
    with pytest.raises(InputError, match="sequence of items"):
        model(tiny_options).preprocess(torch.zeros(32, 32))


def test_config_errors(tiny_options):
    with pytest.raises(ConfigError, match="percentiles"):
        model(tiny_options, percentiles=(99.0, 1.0))
    with pytest.raises(ConfigError, match="normalization"):
        model(tiny_options, normalization="imagenet")
    with pytest.raises(ConfigError, match="divisible"):
        model(tiny_options, num_heads=3)


@pytest.mark.parametrize("frame", [np.full((32, 32), 1.0, np.float32), torch.full((32, 32), 1.0)])
def test_preprocess_does_not_modify_inputs(tiny_options, frame):
    before = frame.copy() if isinstance(frame, np.ndarray) else frame.clone()
    model(tiny_options, normalization="standardize").preprocess([frame])
    assert (frame == before).all()


def test_toy_world_options_centre_the_toy_inputs(tiny_options):
    from bind_thermal import TOY_WORLD_OPTIONS

    from bindcore.toyworld import generate_scenes

    m = model(tiny_options, **TOY_WORLD_OPTIONS)
    x = m.preprocess([m.render_toy(s) for s in generate_scenes(100, seed=0)])
    assert abs(x.mean().item()) < 1.0
