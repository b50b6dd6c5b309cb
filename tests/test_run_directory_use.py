"""What a user does with bindcore's outputs (issue "One anchor, one run setup", bugs 2, 3 and 6): a loaded modality
embeds the same way every call, vision and text preprocess without the anchor's weights, and a trained run
directory is a model directory for every command that takes ``--model``."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import bindcore
from bindcore.cli import cli
from bindcore.inference import BindModel
from bindcore.io import load_modality
from bindcore.recipe import validate_recipe


def _require(*names: str) -> None:
    missing = [n for n in names if n not in bindcore.list_modalities()]
    if missing:
        pytest.skip(f"plugins for {missing} are not installed (pip install -e plugins/bind-{missing[0]})")


def test_a_loaded_modality_is_in_eval_mode_and_embeds_the_same_every_call(tmp_path) -> None:
    _require("imu")
    imu = bindcore.modality("imu", window_steps=64, num_windows=1, patch_size=8, width=16, num_layers=2,
                            num_heads=2, embed_dim=8, drop_path=0.7)  # the paper's IMU stochastic depth
    imu.save(tmp_path / "imu")
    loaded = load_modality(tmp_path / "imu")
    assert not loaded.training
    from bind_imu import ImuRecording

    samples = np.random.default_rng(0).normal(size=(6, 200)).astype(np.float32)
    x = loaded.preprocess([ImuRecording(samples, sample_rate=400.0)])
    with torch.no_grad():
        first = loaded.project(loaded.encode(x))  # the README's two-step form, no .embed() needed
        second = loaded.project(loaded.encode(x))
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", ["vision", "text"])
def test_vision_and_text_preprocess_with_default_options_and_no_weights(name: str, monkeypatch) -> None:
    # Default options name ViT-H-14 / laion2b, whose weights are not on this machine (and HF_HUB_OFFLINE is set):
    # preprocessing must not need them.
    _require(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    module = bindcore.modality(name)
    item = "a dog barking" if name == "text" else np.zeros((40, 60, 3), dtype=np.uint8)
    x = module.preprocess([item])
    assert x.shape == ((1, 77) if name == "text" else (1, 3, 224, 224))
    assert not module.anchor_loaded
    assert module.embed_dim == 1024  # known from the architecture, still without weights


def _tiny_real_recipe() -> dict:
    """Real plugins (audio + vision + text) on a tiny random anchor: a run that takes seconds."""
    return {
        "name": "tiny-real",
        "run": {"seed": 0, "checkpoint_every": 50, "tensorboard": False, "progress": False, "threads": 1},
        "anchor": {"tiny": {"embed_dim": 16, "image_size": 16, "patch_size": 8, "width": 16, "layers": 1,
                            "heads": 2, "context_length": 16}, "image": {"toy_image_size": 16}},
        "data": {"toy": {"train_scenes": 32, "eval_scenes": 20}, "workers": 0},
        "eval": {"enabled": False},
        "modalities": {"audio": {
            "clip_duration": 1.0, "clips_per_item": 1, "num_mel_bins": 16, "target_length": 40, "patch_size": 8,
            "patch_stride": 8, "width": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "toy_duration": 1.0,
            "train": {"batch_size": 16, "epochs": 1, "lr": 1e-3}}},
    }


def _wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    samples = (np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(rate * seconds))) * 3000).astype(np.int16)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def test_a_run_directory_is_a_model_directory(tmp_path, monkeypatch) -> None:
    _require("audio", "vision", "text")
    from bindcore.train.trainer import train

    run = tmp_path / "runs" / "mine"
    train(validate_recipe(_tiny_real_recipe()), run, log=lambda _m: None)
    assert {p.name for p in (run / "modalities").iterdir()} >= {"audio", "vision", "text"}

    model = BindModel.load(run)  # the run itself, not run/modalities
    assert set(model.names) == {"audio", "vision", "text"}

    monkeypatch.chdir(tmp_path)
    clips = [str(_wav(tmp_path / f"clip{i}.wav", seconds=1.0 + i / 4)) for i in range(3)]
    result = CliRunner().invoke(cli, ["embed", "-m", "audio", *clips, "--model", str(run), "-o", "audio.npy"])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "audio.npy").shape == (3, 16)

    result = CliRunner().invoke(cli, ["search", "audio.npy", "-q", "text=a dog barking", "--model", str(run),
                                      "-k", "2", "--json"])
    assert result.exit_code == 0, result.output
    (hit,) = json.loads(result.output)
    assert hit["results"][0]["input"] in clips

    # The saved towers find the run's own anchor even after the run directory moved.
    moved = tmp_path / "elsewhere"
    run.rename(moved)
    again = BindModel.load(moved, ["text"])
    assert again["text"].embed(["a dog"]).shape == (1, 16)
