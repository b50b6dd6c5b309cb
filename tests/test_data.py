"""Data: manifests (clear errors), the pure step plan, toy sources, seeded augmentation, RandAugment."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bindcore.data.batches import Materialized, StepBatches, augment, crop_resize, sample_crop_boxes
from bindcore.data.plan import ModalityPlan, StepPlan
from bindcore.data.randaugment import OPS
from bindcore.data.sources import ManifestSource, ToySource, read_manifest
from bindcore.errors import ConfigError
from bindcore.recipe import Augmentation, ImageCrop, RandAugment
from bindcore.testing.stubs import StubVision, make_feature_modality


def _write(tmp_path, rows, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_manifest_relative_paths_and_missing_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "a.wav").write_bytes(b"x")
    path = _write(tmp_path, [{"image": "a.png", "audio": "a.wav", "label": "dog"}])
    source = ManifestSource(path, "audio")
    item = source.load(0)
    assert item["image"] == str(tmp_path / "a.png") and item["label"] == 0
    bad = _write(tmp_path, [{"image": "a.png", "audio": "a.wav"}, {"image": "b.png", "audio": "a.wav"}], "bad.jsonl")
    with pytest.raises(ConfigError, match=r"bad.jsonl: 1 problem\(s\) in the manifest:\n  "
                                          r".*bad.jsonl:2: image file not found: .*b.png"):
        read_manifest(bad, ("image", "audio"))


def test_manifest_missing_key_and_bad_json(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    path = _write(tmp_path, [{"image": "a.png"}])
    with pytest.raises(ConfigError, match=r":1: row has no 'audio'"):
        read_manifest(path, ("image", "audio"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"image": "a.png"\n')
    with pytest.raises(ConfigError, match=r"broken.jsonl:1: not valid JSON"):
        read_manifest(broken, ("image",))


def test_csv_manifest(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "a.npy").write_bytes(b"x")
    path = tmp_path / "pairs.csv"
    path.write_text("image,depth\na.png,a.npy\n")
    assert read_manifest(path, ("image", "depth"))[0]["depth"] == str(tmp_path / "a.npy")


def test_plan_is_pure_and_mixes_modalities():
    plans = [ModalityPlan("a", 50, 8, 1.0, 2), ModalityPlan("b", 30, 8, 2.0, 1)]
    first, second = StepPlan(plans, seed=3), StepPlan(plans, seed=3)
    assert len(first) == plans[0].total_steps + plans[1].total_steps
    for step in range(len(first)):
        a, b = first.step(step), second.step(step)
        assert a[0] == b[0] and a[1] == b[1] and np.array_equal(a[2], b[2])
    names = [first.step(s)[0] for s in range(len(first))]
    assert set(names[: len(names) // 2]) == {"a", "b"}  # interleaved, not one after the other
    other = StepPlan(plans, seed=4)
    assert not all(np.array_equal(first.step(s)[2], other.step(s)[2]) for s in range(len(first)))


def test_replication_scales_epoch():
    plan = ModalityPlan("depth", 10, 5, 50.0, 1)
    assert plan.samples_per_epoch == 500 and plan.steps_per_epoch == 100
    epoch = np.concatenate([plan.indices(0, k) for k in range(plan.steps_per_epoch)])
    assert np.bincount(epoch, minlength=10).tolist() == [50] * 10


def test_toy_source_deterministic():
    feature = make_feature_modality("toya")()
    source = ToySource(20, 1, {"image": StubVision(), "toya": feature})
    again = ToySource(20, 1, {"image": StubVision(), "toya": feature})
    assert np.array_equal(source.load(3)["image"], again.load(3)["image"])
    assert source.label(3) == source.scenes[3].concept
    assert source.fingerprint("image") != ToySource(20, 2, source.renderers).fingerprint("image")


AUDIO_AXES = {"frequency": -2, "time": -1}  # bind-audio's declaration: (N, clips, 1, mel bins, frames)
IMU_AXES = {"time": -1}  # bind-imu's: (N, windows, 6 channels, T)
MAP_AXES = {"height": -2, "width": -1}  # PatchModality's (depth, thermal): (N, 1, H, W)


def test_augment_is_seeded():
    x = torch.randn(4, 1, 8, 12)
    settings = Augmentation(random_erase=1.0, color_jitter=0.2, gaussian_noise=0.1)
    a = augment(x, settings, torch.Generator().manual_seed(0), MAP_AXES)
    b = augment(x, settings, torch.Generator().manual_seed(0), MAP_AXES)
    c = augment(x, settings, torch.Generator().manual_seed(1), MAP_AXES)
    assert torch.equal(a, b) and not torch.equal(a, x) and not torch.equal(a, c)


def test_freq_mask_hits_only_the_frequency_axis_of_audio():
    x = torch.ones(8, 2, 1, 16, 20)
    out = augment(x, Augmentation(freq_mask=8), torch.Generator().manual_seed(0), AUDIO_AXES)
    zero = out == 0
    assert zero.any()
    # Whether a value is masked depends only on (row, frequency): whole mel rows, in every clip and frame.
    per_frequency = zero[:, :1, :, :, :1]
    assert torch.equal(zero, per_frequency.expand_as(zero))
    assert (zero.sum(dim=(1, 2, 4)) / (2 * 20)).max() <= 8  # at most freq_mask rows


def test_time_mask_never_hits_imu_channels():
    x = torch.ones(8, 2, 6, 30)
    out = augment(x, Augmentation(time_mask=10), torch.Generator().manual_seed(0), IMU_AXES)
    zero = out == 0
    assert zero.any()
    # Masked frames are masked in all 6 sensor channels and both windows alike: channels are not a spatial axis.
    assert torch.equal(zero, zero[:, :1, :1, :].expand_as(zero))


@pytest.mark.parametrize("setting, axis", [(dict(freq_mask=3), "frequency"), (dict(random_erase=1.0), "height")])
def test_undeclared_axis_is_refused_not_guessed(setting, axis):
    with pytest.raises(ValueError, match=f"no '{axis}' axis"):
        augment(torch.ones(2, 1, 6, 30), Augmentation(**setting), torch.Generator().manual_seed(0), IMU_AXES)


@pytest.mark.parametrize("package, cls, axes", [
    ("bind_audio", "AudioModality", AUDIO_AXES), ("bind_imu", "ImuModality", IMU_AXES),
    ("bind_depth", "DepthModality", MAP_AXES), ("bind_thermal", "ThermalModality", MAP_AXES)])
def test_plugins_declare_their_axes(package, cls, axes):
    module = pytest.importorskip(package)
    assert dict(getattr(module, cls).augment_axes) == axes


def _ramp_maps(batch: int, height: int, width: int) -> torch.Tensor:
    """Channel 0 = u (x in [0, 1]), channel 1 = v (y) at pixel centres: a linear field bilinear crops keep exact."""
    v, u = torch.meshgrid((torch.arange(height) + 0.5) / height, (torch.arange(width) + 0.5) / width, indexing="ij")
    return torch.stack([u, v]).expand(batch, 2, height, width).clone()


def _assert_shows_box(out: torch.Tensor, boxes: torch.Tensor, source_hw: tuple[int, int]) -> None:
    """``out`` (a crop of :func:`_ramp_maps`) shows exactly the relative ``boxes`` (where no border clamp applies)."""
    height, width = out.shape[-2:]
    for row, (top, left, box_h, box_w) in enumerate(boxes.tolist()):
        u = left + box_w * (torch.arange(width) + 0.5) / width
        v = top + box_h * (torch.arange(height) + 0.5) / height
        expected_u, expected_v = u.expand(height, width), v[:, None].expand(height, width)
        inside = ((expected_u >= 0.5 / source_hw[1]) & (expected_u <= 1 - 0.5 / source_hw[1])
                  & (expected_v >= 0.5 / source_hw[0]) & (expected_v <= 1 - 0.5 / source_hw[0]))
        assert inside.float().mean() > 0.5
        torch.testing.assert_close(out[row, 0][inside], expected_u[inside].float(), atol=1e-5, rtol=0)
        torch.testing.assert_close(out[row, 1][inside], expected_v[inside].float(), atol=1e-5, rtol=0)


class _Spatial:
    augment_axes = MAP_AXES


class _Sequence:
    augment_axes = IMU_AXES


def _crop_batches(preprocessor, settings, *, seed=0, items=24, image_hw=(32, 32), map_hw=(12, 20)):
    plan = StepPlan([ModalityPlan("m", items, 6, 1.0, 2)], seed=seed)
    inputs = _ramp_maps(items, *map_hw) if preprocessor.augment_axes is MAP_AXES else torch.ones(items, 1, 2, 9)
    stores = {("m", "m"): Materialized(inputs), ("m", "image"): Materialized(_ramp_maps(items, *image_hw))}
    return StepBatches(plan, {}, {"m": preprocessor}, image_preprocessor=None, augmentations={"m": settings},
                       seed=seed, stores=stores)


def test_aligned_crop_applies_the_same_relative_box_to_image_and_depth():
    batches = _crop_batches(_Spatial(), Augmentation(image_crop=ImageCrop(scale=(0.2, 0.6))))
    for step in range(3):
        batch = batches[step]
        boxes = batch["crop_boxes"]
        assert boxes.shape == (6, 4) and not torch.allclose(boxes, torch.tensor([0.0, 0, 1, 1], dtype=boxes.dtype))
        assert batch["images"].shape == (6, 2, 32, 32) and batch["inputs"].shape == (6, 2, 12, 20)
        _assert_shows_box(batch["images"], boxes, (32, 32))
        _assert_shows_box(batch["inputs"], boxes, (12, 20))  # another resolution and aspect, same relative box


def test_crop_boxes_follow_scale_and_ratio():
    crop = ImageCrop(scale=(0.3, 0.5), ratio=(0.5, 2.0))
    boxes = sample_crop_boxes(400, 32, 64, crop, torch.Generator().manual_seed(0))
    top, left, box_h, box_w = boxes.unbind(1)
    area = box_h * box_w
    assert area.min() >= 0.3 - 1e-9 and area.max() <= 0.5 + 1e-9
    pixel_ratio = (box_w * 64) / (box_h * 32)
    assert pixel_ratio.min() >= 0.5 - 1e-9 and pixel_ratio.max() <= 2.0 + 1e-9
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + box_h <= 1 + 1e-9).all() and (left + box_w <= 1 + 1e-9).all()


@hypothesis_settings(max_examples=30, deadline=None)
@given(height=st.integers(1, 300), width=st.integers(1, 300), low=st.floats(0.01, 1.0), span=st.floats(0, 1),
       ratio_low=st.floats(0.1, 3.0), ratio_span=st.floats(0, 5), seed=st.integers(0, 2**32))
def test_crop_boxes_always_lie_inside_the_image(height, width, low, span, ratio_low, ratio_span, seed):
    crop = ImageCrop(scale=(low, min(1.0, low + span)), ratio=(ratio_low, ratio_low + ratio_span))
    boxes = sample_crop_boxes(5, height, width, crop, torch.Generator().manual_seed(seed))
    top, left, box_h, box_w = boxes.unbind(1)
    assert torch.isfinite(boxes).all() and (box_h > 0).all() and (box_w > 0).all()
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + box_h <= 1 + 1e-9).all() and (left + box_w <= 1 + 1e-9).all()


def test_full_box_crop_is_the_identity():
    x = torch.randn(3, 2, 5, 7, 9)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3)
    torch.testing.assert_close(crop_resize(x, boxes, {"height": -3, "width": -2}), x, atol=1e-6, rtol=0)


def test_crop_is_a_pure_function_of_seed_and_step():
    settings = Augmentation(image_crop=ImageCrop(), random_erase=0.5, color_jitter=0.2)
    first, again = _crop_batches(_Spatial(), settings), _crop_batches(_Spatial(), settings)
    for step in (0, 5, 2):
        a, b = first[step], again[step]
        assert all(torch.equal(a[k], b[k]) for k in ("crop_boxes", "images", "inputs"))
    assert not torch.equal(first[0]["crop_boxes"], first[1]["crop_boxes"])
    other_seed = _crop_batches(_Spatial(), settings, seed=1)
    assert not torch.equal(first[0]["crop_boxes"], other_seed[0]["crop_boxes"])


def test_aligned_crop_off_or_not_spatial_leaves_inputs_uncropped():
    unaligned = _crop_batches(_Spatial(), Augmentation(image_crop=ImageCrop(), aligned_crop=False))[0]
    assert not torch.equal(unaligned["images"], _ramp_maps(6, 32, 32))
    assert torch.equal(unaligned["inputs"], _ramp_maps(6, 12, 20))
    sequence = _crop_batches(_Sequence(), Augmentation(image_crop=ImageCrop()))[0]  # IMU-like: no height/width
    assert "crop_boxes" in sequence and torch.equal(sequence["inputs"], torch.ones(6, 1, 2, 9))


def test_image_crop_with_cached_anchor_is_refused():
    plan = StepPlan([ModalityPlan("m", 8, 4, 1.0, 1)], seed=0)
    with pytest.raises(ConfigError, match="image_crop: the anchor's image embeddings are cached"):
        StepBatches(plan, {}, {"m": _Spatial()}, image_preprocessor=None,
                    augmentations={"m": Augmentation(image_crop=ImageCrop())}, seed=0, anchor_caches={"m": object()})


def test_webdataset_shards_random_access(tmp_path):
    import webdataset

    from bindcore.data.sources import ShardSource

    for shard in range(2):
        with webdataset.TarWriter(str(tmp_path / f"pairs-{shard:03d}.tar")) as sink:
            for item in range(3):
                sink.write({"__key__": f"s{shard}_{item}", "image.png": b"img%d" % item,
                            "audio.wav": b"wav%d%d" % (shard, item)})
    source = ShardSource(str(tmp_path / "pairs-{000..001}.tar"), "audio")
    assert len(source) == 6
    item = source.load(4)
    assert open(item["audio"], "rb").read() == b"wav11"
    assert open(item["image"], "rb").read() == b"img1"
    with pytest.raises(ConfigError, match="shard not found"):
        ShardSource(str(tmp_path / "pairs-{000..002}.tar"), "audio")


# -- RandAugment (Table 9: depth/thermal "RandAugment 9/0.5") ------------------------------------------------
RAND_OPS = sorted(OPS)


@pytest.mark.parametrize("name", RAND_OPS)
def test_rand_augment_op_level_zero_is_identity_and_strong_level_changes_the_map(name):
    image = torch.randn(1, 12, 16, generator=torch.Generator().manual_seed(3))
    for sign in (1.0, -1.0):
        assert torch.equal(OPS[name](image, 0.0, sign), image), f"{name} at level 0 is not the identity"
    strong = OPS[name](image, 9.0, 1.0)
    assert strong.shape == image.shape and strong.dtype == image.dtype and torch.isfinite(strong).all()
    assert not torch.allclose(strong, image), f"{name} at level 9 left the map unchanged"


@pytest.mark.parametrize("name", RAND_OPS)
@hypothesis_settings(max_examples=20, deadline=None)
@given(level=st.floats(0, 10), sign=st.sampled_from([1.0, -1.0]), height=st.integers(1, 12),
       width=st.integers(1, 12), scale=st.sampled_from([1e-6, 1.0, 1e3]), constant=st.booleans(),
       channels=st.sampled_from([1, 3]))
def test_rand_augment_ops_keep_shape_dtype_and_stay_finite(name, level, sign, height, width, scale, constant,
                                                           channels):
    image = torch.randn(channels, height, width, generator=torch.Generator().manual_seed(height * 13 + width)) * scale
    if constant:  # a flat map (zero range) must not divide by zero
        image = torch.full_like(image, 0.5)
    out = OPS[name](image, level, sign)
    assert out.shape == image.shape and out.dtype == image.dtype and torch.isfinite(out).all()
    assert torch.equal(OPS[name](image, level, sign), out)  # a pure function of its arguments


def test_translate_moves_the_map_by_whole_pixels_along_the_right_axis():
    image = torch.arange(10 * 20, dtype=torch.float32).reshape(1, 10, 20)
    level = 4 / (0.45 * 20) * 10  # a 4-pixel shift of a 20-pixel-wide map
    out = OPS["translate_x"](image, level, 1.0)
    torch.testing.assert_close(out[:, :, :16], image[:, :, 4:])  # output pixel x reads input x + 4
    assert (out[:, :, 16:] == 0).all()  # uncovered pixels are filled with 0 (the standardised mean)
    out_y = OPS["translate_y"](image, 4 / (0.45 * 10) * 10, -1.0)
    torch.testing.assert_close(out_y[:, 4:, :], image[:, :6, :])


def test_rand_augment_is_seeded_and_only_draws_from_its_own_stream():
    x = torch.randn(6, 1, 12, 16)
    settings = Augmentation(rand_augment=RandAugment(prob=1.0))
    a = augment(x, settings, torch.Generator().manual_seed(0), MAP_AXES, torch.Generator().manual_seed(5))
    b = augment(x, settings, torch.Generator().manual_seed(0), MAP_AXES, torch.Generator().manual_seed(5))
    c = augment(x, settings, torch.Generator().manual_seed(0), MAP_AXES, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    # Switching RandAugment on leaves the other settings' draws (the erased boxes) where they were.
    erase = dict(random_erase=1.0)
    maps = torch.rand(6, 1, 12, 16) + 1  # never 0 before erasing
    plain = augment(maps, Augmentation(**erase), torch.Generator().manual_seed(0), MAP_AXES)
    with_rand = augment(maps, Augmentation(**erase, rand_augment=RandAugment(
        ops=["brightness"], prob=1.0, magnitude_std=0.0)), torch.Generator().manual_seed(0), MAP_AXES)
    assert torch.equal(plain == 0, with_rand == 0)


def test_rand_augment_magnitude_zero_is_identity_through_augment():
    x = torch.randn(4, 1, 8, 8)
    settings = Augmentation(rand_augment=RandAugment(magnitude=0.0, magnitude_std=0.0, prob=1.0, num_ops=4))
    assert torch.equal(augment(x, settings, torch.Generator().manual_seed(0), MAP_AXES), x)


@pytest.mark.parametrize("ops", [["rotate"], ["contrast"], None])
def test_rand_augment_acts_on_the_declared_axes_only(ops):
    """A map laid out (N, H, C, W) with axes declared there is augmented as the same map laid out (N, C, H, W)."""
    settings = Augmentation(rand_augment=RandAugment(prob=1.0, ops=ops))
    maps = torch.randn(5, 2, 10, 14)  # (N, C, H, W)
    standard = augment(maps, settings, torch.Generator().manual_seed(0), MAP_AXES, torch.Generator().manual_seed(1))
    odd_layout = maps.permute(0, 2, 1, 3).contiguous()  # (N, H, C, W)
    odd = augment(odd_layout, settings, torch.Generator().manual_seed(0), {"height": -3, "width": -1},
                  torch.Generator().manual_seed(1))
    assert not torch.equal(standard, maps)
    torch.testing.assert_close(odd.permute(0, 2, 1, 3), standard)
    # Rows are independent images: one row's augmentation never reads another's.
    alone = augment(maps[:1], settings, torch.Generator().manual_seed(0), MAP_AXES, torch.Generator().manual_seed(1))
    torch.testing.assert_close(alone, standard[:1])
    with pytest.raises(ValueError, match="no 'height' axis"):
        augment(torch.ones(2, 6, 30), settings, torch.Generator().manual_seed(0), IMU_AXES)


def test_step_batches_rand_augment_is_a_pure_function_of_seed_and_step():
    settings = Augmentation(rand_augment=RandAugment(prob=1.0))
    plain = _crop_batches(_Spatial(), Augmentation(color_jitter=0.1))
    first, again = (_crop_batches(_Spatial(), settings.model_copy(update={"color_jitter": 0.1})) for _ in range(2))
    assert torch.equal(first[3]["inputs"], again[3]["inputs"])
    assert not torch.equal(first[3]["inputs"], plain[3]["inputs"])
    assert not torch.equal(first[3]["inputs"], first[4]["inputs"])


class _CountingSource:
    """A source whose ``fail_at``-th load raises; records what was loaded and released."""

    def __init__(self, fail_at: int):
        self.fail_at, self.loaded, self.released = fail_at, [], []

    def __len__(self) -> int:
        return 10

    def load(self, index, keys=None):
        if index == self.fail_at:
            raise OSError(f"item {index}: unreadable")
        self.loaded.append(index)
        return {key: np.zeros(16, np.float32) for key in keys}

    def release(self, item):
        self.released.append(item)


@pytest.mark.parametrize("fail_at", [3, 99])
def test_every_loaded_item_is_released_even_when_a_later_load_fails(fail_at):
    source = _CountingSource(fail_at)
    plan = StepPlan([ModalityPlan("m", 10, 5, 1.0, 1)], seed=0)
    batches = StepBatches(plan, {"m": source}, {"m": make_feature_modality("m")()}, image_preprocessor=None,
                          augmentations={}, seed=0)
    if fail_at == 99:
        assert batches._from_source("m", "m", np.arange(5)).shape[0] == 5
    else:
        with pytest.raises(OSError, match="item 3: unreadable"):
            batches._from_source("m", "m", np.arange(5))
    assert source.loaded == [i for i in range(5) if i < fail_at]
    assert len(source.released) == len(source.loaded)


@pytest.mark.parametrize("fail_at", [3, 99])
def test_source_chunks_release_every_loaded_item(fail_at):
    # preprocess_all and the anchor cache read sources through SourceChunks: extracted shard members must not pile up.
    from bindcore.data.batches import SourceChunks

    source = _CountingSource(fail_at)
    chunks = SourceChunks(source, "m", make_feature_modality("m")(), chunk=4)
    if fail_at == 99:
        assert [chunks[n].shape[0] for n in range(len(chunks))] == [4, 4, 2]
    else:
        with pytest.raises(OSError, match="item 3: unreadable"):
            chunks[0]
    assert len(source.released) == len(source.loaded) > 0

