"""Depth preprocessing: units, disparity, in-fill, resize/crop, normalisation, per-item overrides, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bind_depth import REFERENCE_INPUT_OPTIONS, DepthInput, DepthModality, decode_sunrgbd_depth
from bind_depth.config import OMNIVORE_MEAN, OMNIVORE_STD

from bindcore import ConfigError, InputError

RAW = {"infill": "none", "normalization": "none"}  # expose the representation itself


def model(tiny_options, **options) -> DepthModality:
    return DepthModality(**{**tiny_options, **options})


def test_png_millimetres_equal_float_metres(tiny_options, write_png):
    rng = np.random.default_rng(0)
    mm = rng.integers(300, 9000, size=(32, 32)).astype(np.uint16)
    mm[3, 4] = 0
    m = model(tiny_options)
    from_png = m.preprocess([write_png(mm)])
    from_metres = m.preprocess([mm.astype(np.float32) / 1000])
    assert from_png.shape == (1, 1, 32, 32)
    torch.testing.assert_close(from_png, from_metres, rtol=1e-6, atol=1e-6)


def test_disparity_values_and_per_item_camera(tiny_options):
    depth = np.full((32, 32), 2.0, np.float32)
    m = model(tiny_options, focal_length=500.0, baseline=0.1, **RAW)
    default, override = m.preprocess([depth, DepthInput(depth, focal_length=250.0, baseline=0.3)])
    torch.testing.assert_close(default, torch.full((1, 32, 32), 500 * 0.1 / 2.0))
    torch.testing.assert_close(override, torch.full((1, 32, 32), 250 * 0.3 / 2.0))


def test_depth_representation_passes_metres_through(tiny_options):
    depth = np.linspace(0.5, 8, 32 * 32, dtype=np.float32).reshape(32, 32)
    out = model(tiny_options, **REFERENCE_INPUT_OPTIONS).preprocess([depth])
    assert torch.equal(out[0, 0], torch.from_numpy(depth))


def test_depth_clipped_to_range_before_disparity(tiny_options):
    depth = np.full((32, 32), 80.0, np.float32)
    out = model(tiny_options, focal_length=100.0, baseline=1.0, max_depth=50.0, **RAW).preprocess([depth])
    torch.testing.assert_close(out, torch.full_like(out, 100.0 / 50.0))


def test_omnivore_normalisation(tiny_options):
    depth = np.full((32, 32), 1.0, np.float32)
    m = model(tiny_options, focal_length=400.0, baseline=0.075)  # disparity 30
    expected = (30.0 / 75.0 - OMNIVORE_MEAN) / OMNIVORE_STD
    torch.testing.assert_close(m.preprocess([depth]), torch.full((1, 1, 32, 32), expected))
    near = np.full((32, 32), 0.02, np.float32)  # disparity 1500 → clamped at 75
    torch.testing.assert_close(m.preprocess([near]), torch.full((1, 1, 32, 32), (1 - OMNIVORE_MEAN) / OMNIVORE_STD))


def test_infill_nearest_and_none(tiny_options):
    depth = np.full((32, 32), 2.0, np.float32)
    depth[:, :16] = 4.0
    depth[10, 3] = 0.0  # invalid, surrounded by 4 m
    depth[10, 20] = 0.0  # invalid, surrounded by 2 m
    filled = model(tiny_options, representation="depth", normalization="none").preprocess([depth])[0, 0]
    assert filled[10, 3] == 4.0 and filled[10, 20] == 2.0
    kept = model(tiny_options, **REFERENCE_INPUT_OPTIONS).preprocess([depth])[0, 0]
    assert kept[10, 3] == 0.0 and kept[10, 20] == 0.0
    disparity = model(tiny_options, infill="none", normalization="none").preprocess([depth])[0, 0]
    assert disparity[10, 3] == 0.0 and disparity[0, 0] > 0


def test_resize_shorter_side_then_centre_crop(tiny_options):
    wide = np.tile(np.arange(1, 65, dtype=np.float32), (32, 1))  # 32×64, value = column + 1
    out = model(tiny_options, **REFERENCE_INPUT_OPTIONS).preprocess([wide])[0, 0]
    assert torch.equal(out, torch.from_numpy(wide[:, 16:48]))
    big = np.full((100, 60), 3.0, np.float32)
    torch.testing.assert_close(model(tiny_options, **REFERENCE_INPUT_OPTIONS).preprocess([big]),
                               torch.full((1, 1, 32, 32), 3.0))


def test_integer_arrays_need_a_unit(tiny_options):
    mm = np.full((32, 32), 1500, np.uint16)
    m = model(tiny_options, **REFERENCE_INPUT_OPTIONS)
    with pytest.raises(InputError, match="metres_per_unit"):
        m.preprocess([mm])
    out = m.preprocess([DepthInput(mm, metres_per_unit=0.001), DepthInput(torch.from_numpy(mm.astype(np.int32)),
                                                                          metres_per_unit=0.001)])
    torch.testing.assert_close(out, torch.full((2, 1, 32, 32), 1.5))


def test_other_png_scales_and_8bit(tiny_options, write_png):
    m = model(tiny_options, **REFERENCE_INPUT_OPTIONS)
    tum = write_png(np.full((32, 32), 5000, np.uint16), "tum.png")  # TUM RGB-D: 5000 units per metre
    torch.testing.assert_close(m.preprocess([DepthInput(tum, metres_per_unit=1 / 5000)]),
                               torch.ones(1, 1, 32, 32))
    eight_bit = write_png(np.full((32, 32), 100, np.uint8), "8bit.png")
    with pytest.raises(InputError, match=r"8bit\.png.*cannot hold millimetre"):
        m.preprocess([eight_bit])
    torch.testing.assert_close(m.preprocess([DepthInput(eight_bit, metres_per_unit=0.01)]),
                               torch.ones(1, 1, 32, 32))


def test_npy_and_tensor_inputs(tiny_options, tmp_path):
    depth = np.random.default_rng(1).uniform(0.5, 5, (40, 40)).astype(np.float32)
    np.save(tmp_path / "d.npy", depth)
    m = model(tiny_options)
    ref = m.preprocess([depth])
    torch.testing.assert_close(m.preprocess([tmp_path / "d.npy"]), ref)
    torch.testing.assert_close(m.preprocess([str(tmp_path / "d.npy")]), ref)
    torch.testing.assert_close(m.preprocess([torch.from_numpy(depth).requires_grad_()]), ref)
    torch.testing.assert_close(m.preprocess([depth[None]]), ref)  # (1, H, W)
    assert m.preprocess([]).shape == (0, 1, 32, 32)


def test_nonfinite_rejected_or_treated_as_invalid(tiny_options):
    depth = np.full((32, 32), 2.0, np.float32)
    depth[5, 5] = np.nan
    depth[6, 6] = np.inf
    with pytest.raises(InputError, match="2 of 1024 depth values are NaN or infinite"):
        model(tiny_options).preprocess([depth])
    out = model(tiny_options, nonfinite_as_invalid=True, representation="depth", normalization="none")
    torch.testing.assert_close(out.preprocess([depth]), torch.full((1, 1, 32, 32), 2.0))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.full((32, 32), -1.0, np.float32), "negative depth"),
        (np.zeros((32, 32), np.float32), "every pixel is invalid"),
        (np.ones((1, 1), np.float32), "too small"),
        (np.ones((3, 32, 32), np.float32), "several channels"),
        (np.ones((2, 1, 32, 32), np.float32), "wrong shape"),
        (np.ones(32, np.float32), "wrong shape"),
        (np.ones((32, 32), bool), "boolean"),
        (np.full((32, 32), "a"), "unsupported dtype"),
        (np.full((32, 32), -5, np.int16), "negative depth"),
        (torch.ones(32, 32, dtype=torch.complex64), "complex"),
        (3.5, "unsupported depth input type float"),
        ("depth.exr", "unsupported file type"),
        ("missing.png", "file not found"),
    ],
)
def test_bad_items_raise_input_error_naming_the_item(tiny_options, bad, message):
    if isinstance(bad, np.ndarray) and np.issubdtype(bad.dtype, np.integer):
        bad = DepthInput(bad, metres_per_unit=0.001)
    m = model(tiny_options)
    with pytest.raises(InputError, match=message) as info:
        m.preprocess([np.ones((32, 32), np.float32), bad])
    assert info.value.item is bad


def test_corrupt_png(tiny_options, tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)
    with pytest.raises(InputError, match=r"broken\.png.*cannot decode"):
        model(tiny_options).preprocess([path])


def test_single_item_instead_of_a_list(tiny_options):
    with pytest.raises(InputError, match="sequence of items"):
        model(tiny_options).preprocess(np.ones((32, 32), np.float32))


def test_depth_input_validates_its_overrides():
    with pytest.raises(InputError, match="focal_length"):
        DepthInput(np.ones((4, 4)), focal_length=-1.0)
    assert "focal_length=300.0" in repr(DepthInput(np.ones((4, 4)), focal_length=300.0))


def test_config_errors(tiny_options):
    with pytest.raises(ConfigError, match="omnivore"):
        model(tiny_options, representation="depth")
    with pytest.raises(ConfigError, match="min_depth"):
        model(tiny_options, min_depth=5.0, max_depth=1.0)
    with pytest.raises(ConfigError, match="did you mean focal_length"):
        model(tiny_options, focal_lenght=500.0)


def test_preprocess_does_not_modify_inputs(tiny_options):
    depth = np.full((32, 32), 2.0, np.float32)
    depth[1, 1] = 0.0
    depth[2, 2] = np.nan
    before = depth.copy()
    model(tiny_options, nonfinite_as_invalid=True).preprocess([depth])
    np.testing.assert_array_equal(depth, before)


def test_sunrgbd_bit_rotation_is_undone(write_png):
    mm = np.array([[0, 1, 1234], [8191, 8192, 65535]], np.uint16)
    rotated = (mm << 3) | (mm >> 13)  # how SUN RGB-D stores millimetres
    np.testing.assert_allclose(decode_sunrgbd_depth(write_png(rotated, "sun.png")), mm / 1000, rtol=1e-6)
    with pytest.raises(InputError, match="16-bit"):
        decode_sunrgbd_depth(write_png(np.zeros((4, 4), np.uint8), "eight.png"))


def test_depth_representation_clips_to_the_valid_range(tiny_options):
    depth = np.full((32, 32), 3e38, np.float32)
    depth[0, 0] = 0.001
    depth[0, 1] = 0.0  # invalid stays 0
    out = model(tiny_options, representation="depth", infill="none", normalization="none").preprocess([depth])[0, 0]
    assert out[5, 5] == 50.0 and out[0, 0] == np.float32(0.01) and out[0, 1] == 0.0


def test_standardize_normalisation_in_representation_units(tiny_options):
    depth = np.full((32, 32), 2.0, np.float32)
    disparity = model(tiny_options, focal_length=100.0, baseline=1.0, normalization="standardize",
                      norm_mean=10.0, norm_std=4.0).preprocess([depth])
    torch.testing.assert_close(disparity, torch.full((1, 1, 32, 32), (50.0 - 10.0) / 4.0))
    metres = model(tiny_options, representation="depth", normalization="standardize", norm_mean=1.0,
                   norm_std=0.5).preprocess([depth])
    torch.testing.assert_close(metres, torch.full((1, 1, 32, 32), 2.0))


def test_toy_world_options_centre_the_toy_inputs(tiny_options):
    from bind_depth import TOY_WORLD_OPTIONS

    from bindcore.toyworld import generate_scenes

    m = model(tiny_options, **TOY_WORLD_OPTIONS)
    x = m.preprocess([m.render_toy(s) for s in generate_scenes(100, seed=0)])
    assert abs(x.mean().item()) < 0.3 and 0.7 < x.std().item() < 1.3


def test_sunrgbd_encoded_path_equals_its_decoded_metres(tiny_options, write_png):
    mm = np.random.default_rng(1).integers(500, 8000, size=(32, 32)).astype(np.uint16)
    path = write_png((mm << 3) | (mm >> 13), "sun.png")
    m = model(tiny_options)
    from_path, from_metres = m.preprocess([
        DepthInput(path, encoding="sunrgbd", focal_length=529.5, baseline=0.095),
        DepthInput(mm.astype(np.float32) / 1000, focal_length=529.5, baseline=0.095)])
    torch.testing.assert_close(from_path, from_metres, rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="sunrgbd"):
        DepthInput(mm, encoding="sunrgbd")
    with pytest.raises(InputError, match="encoding"):
        DepthInput(path, encoding="tum")
