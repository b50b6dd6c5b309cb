"""Video (bind_vision.video): ImageBind's clip/crop sampling, preprocessing parity, the temporal patch stem."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from bind_vision.video import (
    VideoModality,
    clip_windows,
    crop_offsets,
    inflate_patch_kernel,
    preprocess_video,
    read_frames,
    short_side_size,
    temporal_subsample,
    write_video,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import bindcore.testing
from bindcore.anchor import tiny_anchor_config
from bindcore.errors import InputError
from bindcore.testing import ModalityConformance

TINY_ANCHOR = {"arch": tiny_anchor_config(embed_dim=16, image_size=32, patch_size=8, width=32, layers=1, heads=2)}
_CONFORMANCE_DIR = Path(tempfile.mkdtemp(prefix="bindcore_video_conformance_"))


@st.composite
def videos(draw: st.DrawFn) -> str:
    """Paths of small lossless videos: any frame size from 4 px, 1-6 frames, a few frame rates."""
    height, width, count = draw(st.integers(4, 24)), draw(st.integers(4, 24)), draw(st.integers(1, 6))
    fps = draw(st.sampled_from([1.0, 2.0, 5.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    path = _CONFORMANCE_DIR / f"{height}x{width}x{count}_{fps}_{seed}.avi"
    if not path.is_file():
        frames = np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)
        write_video(path, frames, fps)
    return str(path)


class TestVideoConformance(ModalityConformance):
    """bindcore's conformance kit on video (tiny random anchor, 2 clips x 1 crop)."""

    modality = VideoModality
    config: ClassVar[dict] = {"anchor": TINY_ANCHOR, "clips_per_video": 2, "num_crops": 1}
    inputs = videos()
    invalid_inputs = ("/nonexistent/clip.mp4", 12, __file__)  # missing, not a path, not a video


@pytest.fixture(scope="module")
def video_vectors() -> Path:
    return bindcore.testing.parity_dir("preprocessed/video")


@pytest.fixture(scope="module")
def meta(video_vectors: Path) -> dict:
    return json.loads((video_vectors / "generation_meta.json").read_text())


# -- sampling ---------------------------------------------------------------------------------------------
@pytest.mark.parity
def test_clip_windows_match_the_reference_frame_requests(meta) -> None:
    for name, info in meta["video"].items():
        expected = [(clip[0], clip[-1]) for clip in info["requested_frame_indices_per_clip"]]
        assert clip_windows(info["num_frames"], info["avg_fps"]) == expected, name


@settings(max_examples=50, deadline=None)
@given(frames=st.integers(1, 600), fps=st.floats(1.0, 60.0), clips=st.integers(1, 8),
       duration=st.sampled_from([0.5, 1.0, 2.0, 3.0]))
def test_clip_windows_cover_the_video_in_order(frames, fps, clips, duration) -> None:
    windows = clip_windows(frames, fps, clip_duration=duration, clips_per_video=clips)
    assert len(windows) == clips
    assert all(0 <= first <= last < frames for first, last in windows)
    assert windows[0][0] == 0
    assert [w[0] for w in windows] == sorted(w[0] for w in windows)
    if frames / fps > duration and clips > 1:
        assert windows[-1][1] == frames - 1  # the last clip ends with the video
    picks = [temporal_subsample(first, last) for first, last in windows]
    assert all(p == [first, last] for p, (first, last) in zip(picks, windows, strict=True))


@settings(max_examples=50, deadline=None)
@given(height=st.integers(8, 400), width=st.integers(8, 400), size=st.integers(4, 64), crops=st.sampled_from([1, 3]))
def test_short_side_scale_and_crops_stay_inside(height, width, size, crops) -> None:
    new_h, new_w = short_side_size(height, width, size)
    assert min(new_h, new_w) == size and max(new_h, new_w) >= size
    offsets = crop_offsets(new_h, new_w, size, crops)
    assert len(offsets) == crops
    for y, x in offsets:
        assert 0 <= y <= new_h - size and 0 <= x <= new_w - size
    centre = offsets[len(offsets) // 2]
    assert centre == (math.ceil((new_h - size) / 2), math.ceil((new_w - size) / 2))


# -- preprocessing parity ---------------------------------------------------------------------------------
@pytest.mark.parity
def test_preprocessing_matches_reference_tensors(meta, video_vectors: Path) -> None:
    folder = video_vectors / "preprocessed" / "video"
    flat_indices = np.load(folder / "probe_flat_indices.npy")
    for name in meta["video_order"]:
        ours = preprocess_video(video_vectors / "fixtures" / "video" / f"{name}.avi", size=224).numpy()
        assert ours.shape == (15, 3, 2, 224, 224)
        assert np.abs(ours.reshape(-1)[flat_indices] - np.load(folder / f"{name}_probe.npy")).max() <= 1e-5
        assert np.abs(ours.mean(axis=(3, 4)) - np.load(folder / f"{name}_mean_hw.npy")).max() <= 1e-5
        whole = folder / f"{name}.npy"
        if whole.is_file():
            assert np.abs(ours - np.load(whole)).max() <= 1e-5


@settings(max_examples=20, deadline=None)
@given(height=st.integers(8, 40), width=st.integers(8, 40), count=st.integers(1, 12), fps=st.sampled_from([2, 5, 8]),
       seed=st.integers(0, 1000))
def test_preprocess_any_small_video(tmp_path_factory, height, width, count, fps, seed) -> None:
    frames = np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    path = write_video(tmp_path_factory.mktemp("v") / "v.avi", frames, fps)
    out = preprocess_video(path, size=16, clips_per_video=3, num_crops=3)
    assert out.shape == (9, 3, 2, 16, 16) and out.dtype == torch.float32 and torch.isfinite(out).all()
    # (x - mean) / std of values in [0, 1] stays within these bounds
    assert out.min() >= (0 - 0.49) / 0.26 - 1e-4 and out.max() <= (1 - 0.40) / 0.26 + 1e-4
    again = preprocess_video(path, size=16, clips_per_video=3, num_crops=3)
    assert torch.equal(out, again)  # deterministic


# -- model ----------------------------------------------------------------------------------------------------
def test_still_video_embeds_like_the_image_with_an_inflated_stem() -> None:
    video = VideoModality(anchor=TINY_ANCHOR)
    kernel = video.anchor.model.visual.conv1.weight
    assert torch.allclose(inflate_patch_kernel(kernel).sum(dim=2), kernel, atol=1e-6)
    image = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    clips = image[:, None, :, None].repeat(1, 1, 1, 2, 1, 1)  # (B, 1 view, 3, 2 frames, H, W)
    with torch.no_grad():
        ours = video(clips)
        expected = video.anchor.encode_image(image)
    assert ours.shape == (2, 16) and torch.allclose(ours, expected, atol=1e-5)
    assert list(video.state_dict()) == ["temporal_patch_embed"]
    assert not any(p.requires_grad for p in video.parameters())


def test_different_frames_change_the_embedding_and_views_are_averaged() -> None:
    video = VideoModality(anchor=TINY_ANCHOR)
    gen = torch.Generator().manual_seed(1)
    clips = torch.randn(1, 4, 3, 2, 32, 32, generator=gen)
    with torch.no_grad():
        per_view = video.project(video.encode(clips.reshape(4, 1, 3, 2, 32, 32)))
        whole = video(clips)
    mean = per_view.mean(dim=0)
    assert torch.allclose(whole[0], mean / mean.norm(), atol=1e-5)
    swapped = clips.flip(3)  # swap the two frames: a temporal kernel is not symmetric in general
    with torch.no_grad():
        video.temporal_patch_embed[:, :, 0] *= 2
        assert not torch.allclose(video(clips), video(swapped), atol=1e-4)


def test_bad_inputs_name_the_item(tmp_path: Path) -> None:
    video = VideoModality(anchor=TINY_ANCHOR)
    with pytest.raises(InputError, match="not found"):
        video.preprocess([str(tmp_path / "missing.mp4")])
    junk = tmp_path / "junk.avi"
    junk.write_text("not a video")
    with pytest.raises(InputError, match=r"junk\.avi"):
        video.preprocess([str(junk)])
    with pytest.raises(InputError, match="wrap it in a list"):
        video.preprocess(str(junk))
    with pytest.raises(InputError, match="file path"):
        video.preprocess([np.zeros((2, 8, 8, 3))])
    with pytest.raises(InputError, match="views, 3, 2"):
        video.encode(torch.zeros(1, 3, 32, 32))
    with pytest.raises(InputError, match="add the views axis"):
        video.encode(torch.zeros(1, 3, 2, 32, 32))
    with pytest.raises(InputError, match="add the views axis"):
        video.project(torch.zeros(1, 16))
    assert video.preprocess([]).shape == (0, 15, 3, 2, 32, 32)


def test_read_frames_keeps_only_requested_frames(tmp_path: Path) -> None:
    frames = np.stack([np.full((8, 12, 3), 20 * i, np.uint8) for i in range(6)])
    path = write_video(tmp_path / "ramp.avi", frames, 3)
    kept, count, fps = read_frames(path, [1, 5])
    assert count == 6 and fps == pytest.approx(3.0) and sorted(kept) == [1, 5]
    assert np.array_equal(kept[5], frames[5])


@pytest.mark.parity
def test_small_model_video_parity(meta, video_vectors: Path, tmp_path: Path) -> None:
    from bindcore.convert import imagebind_to_open_clip, load_checkpoint, split_by_modality, write_open_clip_dir

    small = video_vectors / "small_model"
    heads = json.loads((small / "config.json").read_text())["kwargs"]
    groups = split_by_modality(load_checkpoint(small / "state_dict.pt"))
    config, state = imagebind_to_open_clip(groups["vision"], groups["text"], vision_heads=heads["vision_num_heads"],
                                           text_heads=heads["text_num_heads"])
    folder = write_open_clip_dir(tmp_path / "anchor", config, state)
    video = VideoModality.from_imagebind(groups["vision"], anchor={"model": f"local-dir:{folder}"})
    paths = [str(video_vectors / "fixtures" / "video" / f"{name}.avi") for name in meta["video_order"]]
    ours = video.embed(paths).numpy()
    expected = np.load(small / "outputs" / "video_vision_embedding.npy")
    expected /= np.linalg.norm(expected, axis=-1, keepdims=True)
    assert np.abs(ours - expected).max() <= 1e-4


def test_render_toy_is_a_deterministic_video_that_varies_with_the_scene() -> None:
    from bindcore.toyworld import generate_scenes

    video = VideoModality(anchor=TINY_ANCHOR, clips_per_video=2, num_crops=1)
    scenes = generate_scenes(4, seed=3)
    paths = [video.render_toy(s) for s in scenes]
    assert paths == [video.render_toy(s) for s in scenes] and len(set(paths)) == 4
    _, count, fps = read_frames(paths[0])
    assert count == video.config.toy_frames and fps == pytest.approx(video.config.toy_fps)
    x = video.preprocess(paths)
    assert x.shape == (4, 2, 3, 2, 32, 32) and not torch.equal(x[0], x[1])
    assert not torch.equal(x[0, 0, :, 0], x[0, 0, :, 1])  # the object moves between the two frames
