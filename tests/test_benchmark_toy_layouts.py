"""The toy world rendered into ESC-50's and SUN RGB-D's published layouts gives, through ``bindcore benchmark esc50``
and ``bindcore benchmark sunrgbd``, the zero-shot accuracy the toy eval gives on the same scenes with the same
prompts: the benchmark path (reader, files on disk, the model directory's modalities, prompts, scoring, fold
averaging, per-frame disparity) adds nothing and loses nothing. One tiny run binds both modalities."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import bindcore
from bindcore.cli import cli
from bindcore.recipe import validate_recipe
from bindcore.run_setup import EVAL_SCENES_OFFSET
from bindcore.toyworld import CONCEPTS, generate_scenes

TEMPLATES = ["a photo of a {}.", "the sound of a {}."]
EVAL_SCENES = 40  # 8 per fold: equal folds, so the 5-fold average is the pooled accuracy


def tiny_audio_recipe() -> dict:
    """Real plugins (audio + depth + vision + text) on a tiny random anchor, trained to well above chance."""
    return {
        "name": "tiny-esc50",
        "run": {"seed": 0, "checkpoint_every": 50, "tensorboard": False, "progress": False, "threads": 1},
        "anchor": {"tiny": {"embed_dim": 32, "image_size": 16, "patch_size": 8, "width": 32, "layers": 1,
                            "heads": 2, "context_length": 16}, "image": {"toy_image_size": 16},
                   "pretrain": {"steps": 150, "batch_size": 128, "scenes": 512, "lr": 2e-3, "warmup_steps": 5}},
        "data": {"toy": {"train_scenes": 256, "eval_scenes": EVAL_SCENES}, "workers": 0},
        "eval": {"templates": TEMPLATES, "plot": False},
        "modalities": {"audio": {
            "clip_duration": 1.0, "clips_per_item": 2, "num_mel_bins": 16, "target_length": 40, "patch_size": 8,
            "patch_stride": 8, "width": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 32, "toy_duration": 1.5,
            "train": {"batch_size": 32, "epochs": 20, "lr": 5e-3, "temperature": 0.05}},
            "depth": {"image_size": 32, "patch_size": 8, "width": 32, "num_layers": 1, "num_heads": 2,
                      "embed_dim": 32, "train": {"batch_size": 32, "epochs": 40, "lr": 5e-3, "temperature": 0.05}}},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    missing = [n for n in ("audio", "depth", "vision", "text") if n not in bindcore.list_modalities()]
    if missing:
        pytest.skip(f"plugins for {missing} are not installed")
    from bindcore.eval.run import evaluate_run_dir
    from bindcore.train.trainer import train

    run = tmp_path_factory.mktemp("toy-layouts") / "run"
    recipe = validate_recipe(tiny_audio_recipe())
    train(recipe, run, log=lambda _m: None)
    toy = evaluate_run_dir(run, out=run / "re-eval", log=lambda _m: None)  # the run as saved on disk
    return run, recipe, toy


def _scenes(accuracy: float) -> int:
    """How many of the EVAL_SCENES an accuracy counts (accuracies are float32: compare counts, not fractions)."""
    return round(accuracy * EVAL_SCENES)


def test_toy_world_as_esc50_matches_the_toy_eval(trained, tmp_path):
    from bind_audio.benchmarks import write_esc50_layout

    from bindcore.io import load_modality

    run, recipe, toy = trained
    audio = load_modality(run / "modalities" / "audio")
    scenes = generate_scenes(EVAL_SCENES, recipe.data.toy.seed + EVAL_SCENES_OFFSET)  # the toy eval's scenes
    clips = [(rendered.samples, rendered.sample_rate) for rendered in (audio.render_toy(s) for s in scenes)]
    root = write_esc50_layout(tmp_path / "ESC-50-master", clips, [s.concept for s in scenes], list(CONCEPTS),
                              [i % 5 + 1 for i in range(len(scenes))])
    templates = tmp_path / "templates.txt"
    templates.write_text("\n".join(TEMPLATES) + "\n")
    done = CliRunner().invoke(cli, ["benchmark", "esc50", str(root), "--model", str(run), "--templates",
                                    str(templates), "--out", str(tmp_path / "out"), "--json", "--batch-size", "7"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["num_items"] == EVAL_SCENES and result["num_problems"] == 0
    assert result["num_classes"] == len(CONCEPTS) and result["templates"] == len(TEMPLATES)
    expected = toy["zero_shot_top1"]["audio"]
    assert 0.3 < expected < 1.0  # well above chance (0.1) but imperfect: a mismatch would show
    assert abs(_scenes(result["metrics"]["top1"]) - _scenes(expected)) <= 1, (result["metrics"], expected)
    assert result["emergent"] is True and "toy (image, audio) pairs" in result["emergent_basis"]
    assert result["paper"] == {"top1": 0.669} and set(result["per_fold"]) == {"1", "2", "3", "4", "5"}


def test_toy_world_as_sunrgbd_matches_the_toy_eval(trained, tmp_path):
    """Toy depth maps written as SUN RGB-D kv1 frames (16-bit millimetres rotated by 3 bits, intrinsics.txt with
    the focal length the depth config assumes, scene.txt = the concept) and read back as disparity per frame."""
    import numpy as np
    from PIL import Image

    from bindcore.io import load_modality

    run, recipe, toy = trained
    depth = load_modality(run / "modalities" / "depth")
    focal = depth.config.focal_length
    scenes = generate_scenes(EVAL_SCENES, recipe.data.toy.seed + EVAL_SCENES_OFFSET)
    dataset = tmp_path / "SUNRGBD"
    names = []
    for index, scene in enumerate(scenes):
        name = f"kv1/toy/frame{index:03d}"
        folder = dataset / name
        (folder / "image").mkdir(parents=True)
        (folder / "depth_bfx").mkdir()
        millimetres = np.rint(depth.render_toy(scene) * 1000).astype(np.uint16)
        Image.fromarray((millimetres << 3) | (millimetres >> 13)).save(folder / "depth_bfx" / f"{index:03d}.png")
        Image.fromarray(np.zeros((*millimetres.shape, 3), np.uint8)).save(folder / "image" / f"{index:03d}.jpg")
        (folder / "intrinsics.txt").write_text(f"{focal} 0 16\n0 {focal} 16\n0 0 1\n")
        (folder / "scene.txt").write_text(CONCEPTS[scene.concept])
        names.append(name)
    split = tmp_path / "test.txt"
    split.write_text("\n".join(names) + "\n")
    templates = tmp_path / "templates.txt"
    templates.write_text("\n".join(TEMPLATES) + "\n")
    done = CliRunner().invoke(cli, ["benchmark", "sunrgbd", str(tmp_path), "--model", str(run), "--templates",
                                    str(templates), "--out", str(tmp_path / "out"), "--json",
                                    "-o", "split_file", str(split), "-o", "classes", ",".join(CONCEPTS)])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["num_items"] == EVAL_SCENES and result["num_problems"] == 0
    expected = toy["zero_shot_top1"]["depth"]
    assert 0.2 < expected < 1.0, expected  # above chance (0.1; 11 of 40 here) but imperfect: a mismatch would show
    # millimetre storage rounds each depth by < 0.5 mm: at most one scene may flip
    assert abs(_scenes(result["metrics"]["top1"]) - _scenes(expected)) <= 1, (result["metrics"], expected)
    assert result["paper"] == {"top1": 0.351} and result["emergent"] is True


def test_a_wrong_root_is_a_click_error_naming_the_layout(tmp_path):
    if "audio" not in bindcore.list_modalities():
        pytest.skip("bind-audio is not installed")
    done = CliRunner().invoke(cli, ["benchmark", "esc50", str(tmp_path), "--model", str(tmp_path)])
    assert done.exit_code == 1 and "Error:" in done.output
    assert "meta/esc50.csv" in done.output and "unpacked ESC-50-master folder" in done.output
