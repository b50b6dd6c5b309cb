"""``data: {kind: video}``: short videos with sound written by the test (PyAV); each item is the frame at a seeded
time t and the audio clip around t; videos without sound or shorter than a clip are listed and left out; the
audio plugin trains on them; ``bindcore shard`` round-trips them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import bindcore.data.video as video_module
from bindcore.data.video import VideoSource, list_videos
from bindcore.testing.stubs import tiny_plugin_recipe

FPS, RATE = 10, 8000


def tone(frequency: float, seconds: float) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def write_video(path: Path, seconds: float, *, frequency: float | None = 440.0, audio_codec: str = "flac") -> Path:
    """``seconds`` of 10 fps 32×24 video whose frame k is grey level 6·k, plus a mono sine track (lossless FLAC by
    default) unless ``frequency`` is None."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        audio = None
        if frequency is not None:
            audio = container.add_stream(audio_codec, rate=RATE)
            audio.layout = "mono"
        for k in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 6 * k, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            samples, step = tone(frequency, seconds), 1024
            for start in range(0, len(samples), step):
                frame = av.AudioFrame.from_ndarray(samples[None, start:start + step],
                                                   format="flt" if audio_codec == "flac" else "fltp", layout="mono")
                frame.sample_rate, frame.pts = RATE, start
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


def decoded_frames(path: str) -> list[np.ndarray]:
    """Every frame of a video, decoded front to back (no seeking)."""
    import av

    with av.open(path) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(container.streams.video[0])]


def video_tree(root: Path) -> Path:
    """3 usable videos (one AAC in MP4, as published datasets are), one without sound, one too short."""
    (root / "a").mkdir(parents=True)
    write_video(root / "a" / "one.mkv", 3.0, frequency=440)
    write_video(root / "a" / "two.mkv", 4.0, frequency=660)
    write_video(root / "three.mp4", 3.0, frequency=550, audio_codec="aac")
    write_video(root / "silent.mkv", 3.0, frequency=None)
    write_video(root / "short.mkv", 0.5, frequency=440)
    return root


def test_frames_and_clips_come_from_a_seeded_time_and_bad_videos_are_listed(tmp_path):
    root = video_tree(tmp_path / "videos")
    source = VideoSource(list_videos(root), "audio", clip_seconds=1.0, seed=3, clips_per_video=2)
    assert len(source) == 6 and source.inputs_total == 5
    reasons = {Path(u["where"]).name: u["reason"] for u in source.unusable}
    assert reasons["silent.mkv"] == "no audio track" and "shorter (0.50 s) than one 1 s clip" in reasons["short.mkv"]
    times = [source.time_of(i) for i in range(len(source))]
    assert times == [VideoSource(list_videos(root), "audio", clip_seconds=1.0, seed=3, clips_per_video=2).time_of(i)
                     for i in range(len(source))]  # a pure function of the seed
    assert times != [VideoSource(list_videos(root), "audio", clip_seconds=1.0, seed=4, clips_per_video=2).time_of(i)
                     for i in range(len(source))]
    for index in range(len(source)):
        video = source.videos[index // 2]
        t = times[index]
        assert 0.5 <= t <= video.duration - 0.5
        item = source.load(index)
        frame = item["image"]
        assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
        assert np.array_equal(frame, decoded_frames(video.path)[int(t * FPS)])  # the frame shown at t
        samples, rate = item["audio"]
        assert rate == RATE and samples.shape == (1, RATE)
        alone = {key: source.load(index, (key,))[key] for key in ("audio", "image")}  # as batches load them
        assert np.array_equal(alone["image"], frame) and np.array_equal(alone["audio"][0], samples)
        if video.path.endswith(".mkv"):  # lossless FLAC: the sine from t - 0.5 s to t + 0.5 s
            frequency = 440 if "one" in video.path else 660
            expected = tone(frequency, 5.0)[round((t - 0.5) * RATE):][:RATE]
            assert np.abs(samples[0] - expected).max() < 1e-3


def _video_recipe(tmp_path: Path, **data) -> Path:
    raw = tiny_plugin_recipe("audio", {"sample_rate": RATE, "clip_duration": 1.0, "clips_per_item": 1,
                                       "num_mel_bins": 16, "target_length": 50, "patch_size": 10, "patch_stride": 10,
                                       "width": 16, "num_layers": 1, "num_heads": 2},
                             {"kind": "video", "root": "videos", "clips_per_video": 2, **data})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_audio_plugin_trains_on_videos_and_the_left_out_ones_are_listed(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bindcore.cli import cli
    from bindcore.recipe import load_recipe
    from bindcore.train.trainer import train

    video_tree(tmp_path / "videos")
    checked = CliRunner().invoke(cli, ["train", str(_video_recipe(tmp_path)), "--check"])
    assert checked.exit_code == 0, checked.output
    assert "modalities.audio.data: 3 videos with sound checked, 2 left out" in checked.output
    messages: list[str] = []
    opened: list[str] = []
    probe = video_module.probe

    def counted(path: str, clip_seconds: float) -> Any:
        opened.append(Path(path).name)
        return probe(path, clip_seconds)

    (tmp_path / "videos" / "three.mp4").touch()  # changed since the check: read again
    monkeypatch.setattr(video_module, "probe", counted)
    result = train(load_recipe(_video_recipe(tmp_path)), tmp_path / "run", log=messages.append)
    # the recipe's file check and the trainer each build the source: only the changed video's header is read again
    assert opened == ["three.mp4"], opened
    assert result.steps == 3 and np.isfinite(result.final_losses["audio"])
    assert any("data: audio: 2 of 5 inputs left out (1 no audio track, 1 shorter" in m for m in messages)
    listed = [json.loads(line) for line in (tmp_path / "run" / "skipped.jsonl").read_text().splitlines()]
    assert sorted(Path(r["where"]).name for r in listed) == ["short.mkv", "silent.mkv"]


@pytest.mark.parametrize("preprocessed", [False, True], ids=["raw", "preprocessed"])
def test_videos_shard_and_give_the_same_audio_and_frames(tmp_path, preprocessed):
    import torch
    from click.testing import CliRunner

    from bindcore.cli import cli
    from bindcore.data.sources import ShardSource
    from bindcore.plugins import get_registry
    from bindcore.recipe import load_recipe

    video_tree(tmp_path / "videos")
    recipe = _video_recipe(tmp_path)
    result = CliRunner().invoke(cli, ["shard", str(recipe), "--modality", "audio", "--out", str(tmp_path / "shards"),
                                      "--no-progress", *(["--preprocessed"] if preprocessed else [])])
    assert result.exit_code == 0, result.output
    config = load_recipe(recipe).modalities["audio"].config
    audio = get_registry().get("audio")(config)
    vision = get_registry().get("vision")()  # preprocessing only: no weights are built
    source = VideoSource(list_videos(tmp_path / "videos"), "audio", clip_seconds=1.0, seed=0, clips_per_video=2)
    shards = ShardSource(str(tmp_path / "shards" / "audio-000000.tar"), "audio")
    assert len(shards) == len(source) == 6
    for index in range(6):
        want, got = source.load(index), shards.load(index)
        stored = torch.from_numpy(np.load(got["audio"]))[None] if preprocessed else audio.preprocess([got["audio"]])
        assert torch.equal(stored, audio.preprocess([want["audio"]]))
        assert torch.equal(vision.preprocess([got["image"]]), vision.preprocess([want["image"]]))


def write_imu_csv(path: Path, start: float, stop: float, rate: float = 100.0) -> Path:
    """A recording as Ego4D-style CSVs hold one: a timestamp column (seconds from the video's start) + 6 channels."""
    times = np.arange(start, stop, 1 / rate)
    rows = [f"{t:.4f},{np.sin(t):.5f},0.1,9.8,0.0,0.0,{t:.4f}" for t in times]
    path.write_text("timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n" + "\n".join(rows) + "\n")
    return path


def test_imu_recordings_are_cut_to_the_window_around_each_frame_and_train(tmp_path):
    from bindcore.recipe import load_recipe
    from bindcore.train.trainer import train

    folder = tmp_path / "ego"
    folder.mkdir()
    rows = []
    for number, (start, stop) in enumerate([(0.2, 3.0), (0.0, 2.5), (2.6, 3.0)]):  # the last overlaps 0.4 s only
        video = write_video(folder / f"clip{number}.mkv", 3.0, frequency=None)  # IMU pairs need no sound
        write_imu_csv(folder / f"clip{number}.csv", start, stop)
        rows.append(json.dumps({"video": video.name, "imu": f"clip{number}.csv"}))
    (folder / "pairs.jsonl").write_text("\n".join(rows) + "\n")
    raw = yaml.safe_load(_video_recipe(tmp_path).read_text())
    raw["modalities"] = {"imu": {
        "window_seconds": 1.0, "window_steps": 100, "num_windows": 1, "patch_size": 10, "width": 16,
        "num_layers": 1, "num_heads": 2, "embed_dim": 16,
        "train": {"batch_size": 2, "epochs": 2, "lr": 1e-3, "drop_path": 0.0},
        "data": {"kind": "video", "manifest": "ego/pairs.jsonl", "clips_per_video": 2}}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(raw))
    recipe = load_recipe(tmp_path / "recipe.yaml")
    from bindcore.plugins import get_registry
    from bindcore.run_setup import RunSetup

    module = get_registry().get("imu")(recipe.modalities["imu"].config)
    source = RunSetup(recipe, tmp_path / "run", prepare=False).source("imu", module)
    assert len(source) == 4 and [Path(u["where"]).name for u in source.unusable] == ["clip2.mkv"]
    for index in range(len(source)):
        t = source.time_of(index)
        video = source.videos[index // 2]
        assert video.start + 0.5 <= t <= video.start + video.duration - 0.5
        item = source.load(index)
        times = np.loadtxt(item["imu"], delimiter=",", skiprows=1)[:, 0]
        assert times.min() >= t - 0.5 - 1e-9 and times.max() < t + 0.5 and len(times) >= 99  # 1 s at 100 Hz
        assert module.preprocess([item["imu"]]).shape[0] == 1
        assert np.array_equal(item["image"], decoded_frames(video.path)[int(t * FPS)])
        source.release(item)
        assert not Path(item["imu"]).exists()  # the cut window is deleted once preprocessed
    result = train(recipe, tmp_path / "run", log=lambda _m: None)
    assert result.steps == 4 and np.isfinite(result.final_losses["imu"])


def test_preprocessed_audio_shards_follow_only_the_fields_preprocessing_reads():
    from bindcore.data.shard import preprocessing_of
    from bindcore.plugins import get_registry

    audio = get_registry().get("audio")
    small = {"num_mel_bins": 16, "target_length": 50, "width": 16, "num_layers": 1, "num_heads": 2}
    same = preprocessing_of(audio(**small)) == preprocessing_of(audio(**{**small, "width": 32, "drop_path": 0.3}))
    assert same  # the encoder changed, the log-mel clips did not: the shards stay valid
    assert preprocessing_of(audio(**small)) != preprocessing_of(audio(**{**small, "num_mel_bins": 32}))
