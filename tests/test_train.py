"""The trainer: end to end + eval.json, bit-identical resume after SIGKILL, non-finite stop, anchor cache,
gloo DDP. All on stub modalities with tiny sizes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bindcore.errors import NonFiniteError
from bindcore.recipe import validate_recipe
from bindcore.testing.stubs import tiny_ddp_worker, tiny_recipe
from bindcore.train.checkpoint import list_checkpoints, load_checkpoint
from bindcore.train.trainer import train


def _weights(out: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(out / "modalities" / name / "model.safetensors"))


def test_end_to_end_train_and_eval_json(stubs, tmp_path):
    from bindcore.eval.run import evaluate
    from bindcore.run_setup import RunSetup
    from bindcore.train.trainer import Trainer

    out = tmp_path / "run"
    trainer = Trainer(RunSetup(validate_recipe(tiny_recipe()), out, log=lambda _m: None))
    result = trainer.fit()
    evaluate(trainer.setup, trainer.modules, log=lambda _m: None)
    assert result.steps > 0 and set(result.final_losses) == {"toya", "toyb"}
    report = json.loads((out / "eval.json").read_text())
    assert report["emergent"] is True
    for key in ("zero_shot_top1", "retrieval_r1", "chance"):
        assert isinstance(report[key], dict)
    assert set(report["zero_shot_top1"]) == {"toya", "toyb"}
    assert set(report["retrieval_r1"]) == {"toya->toyb", "toyb->toya"}
    values = [*report["zero_shot_top1"].values(), *report["retrieval_r1"].values(), *report["chance"].values()]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert report["chance"]["zero_shot_top1"] == pytest.approx(0.1)
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,modality") and len(rows) > 1
    assert len(list_checkpoints(out / "checkpoints")) <= 3  # rotation keeps keep_checkpoints

    from bindcore.eval.run import evaluate_run_dir

    again = evaluate_run_dir(out, out=tmp_path / "re-eval", log=lambda _m: None)
    assert again["zero_shot_top1"] == pytest.approx(report["zero_shot_top1"])


def test_anchor_cache_reused_and_stale_detected(stubs, tmp_path):
    from bindcore.anchor import load_anchor
    from bindcore.data.sources import ToySource
    from bindcore.testing.stubs import StubVision
    from bindcore.train.cache import build_anchor_cache

    vision = StubVision(image_size=16)
    anchor = load_anchor(tiny={"embed_dim": 16, "image_size": 16, "width": 16, "heads": 4, "text_width": 16,
                               "context_length": 8})
    source = ToySource(20, 0, {"image": vision})
    first = build_anchor_cache(anchor, source, vision, tmp_path)
    expected = anchor.encode_image(vision.preprocess([source.load(i)["image"] for i in range(20)]))
    torch.testing.assert_close(first.rows(list(range(20))), expected, atol=1e-5, rtol=1e-5)
    stamp = first.path.stat().st_mtime_ns
    assert build_anchor_cache(anchor, source, vision, tmp_path).path.stat().st_mtime_ns == stamp  # reused
    other = build_anchor_cache(anchor, ToySource(20, 1, {"image": vision}), vision, tmp_path)
    assert other.path != first.path  # different data → a different cache
    with torch.no_grad():
        anchor.model.visual.proj.add_(1.0)
    assert build_anchor_cache(anchor, source, vision, tmp_path).path != first.path  # anchor changed → stale



def test_a_failed_anchor_cache_build_leaves_no_temporary(stubs, tmp_path, monkeypatch):
    import numpy as np

    from bindcore.anchor import load_anchor
    from bindcore.data.sources import ToySource
    from bindcore.testing.stubs import StubVision
    from bindcore.train.cache import build_anchor_cache

    vision = StubVision(image_size=16)
    anchor = load_anchor(tiny={"embed_dim": 16, "image_size": 16, "width": 16, "heads": 4, "text_width": 16,
                               "context_length": 8})
    source = ToySource(20, 0, {"image": vision})
    opened, encode, calls = [], anchor.encode_image, []
    real_open_memmap = np.lib.format.open_memmap

    def open_memmap(path, *args, **kwargs):
        opened.append(Path(path).name)
        return real_open_memmap(path, *args, **kwargs)

    def failing_second_batch(images):
        calls.append(len(images))
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return encode(images)

    monkeypatch.setattr(np.lib.format, "open_memmap", open_memmap)
    monkeypatch.setattr(anchor, "encode_image", failing_second_batch)
    with pytest.raises(RuntimeError, match="out of memory"):
        build_anchor_cache(anchor, source, vision, tmp_path / "cache", batch_size=8)
    assert len(opened) == 1 and opened[0].startswith(".anchor-") and f".tmp-{os.getpid()}-" in opened[0]
    assert [p.name for p in (tmp_path / "cache").rglob("*")] == []  # the half-filled temporary is gone


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(stubs, tmp_path):
    out = tmp_path / "run"

    def poison(step, batch):
        if step == 7:
            batch["inputs"].fill_(float("nan"))

    with pytest.raises(NonFiniteError, match=r"step 7 \(pair image↔toy[ab]") as info:
        train(validate_recipe(tiny_recipe()), out, log=lambda _m: None, step_hook=poison)
    assert "checkpoint-00000005.pt is intact" in str(info.value)
    checkpoints = list_checkpoints(out / "checkpoints")
    assert [p.name for p in checkpoints] == ["checkpoint-00000005.pt"]
    state = load_checkpoint(checkpoints[0])
    assert state["step"] == 5
    assert all(torch.isfinite(v).all() for h in state["heads"].values() for v in h.values())


def test_cached_anchor_equals_uncached(stubs, tmp_path):
    plain = train(validate_recipe(tiny_recipe()), tmp_path / "plain", log=lambda _m: None)
    raw = tiny_recipe()
    raw["anchor"]["cache_embeddings"] = True
    cached = train(validate_recipe(raw), tmp_path / "cached", log=lambda _m: None)
    assert list((tmp_path / "cached" / "anchor_cache").glob("anchor-*.npy"))
    assert plain.final_losses.keys() == cached.final_losses.keys()
    for name in ("toya", "toyb"):
        a, b = _weights(tmp_path / "plain", name), _weights(tmp_path / "cached", name)
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


SCRIPT = textwrap.dedent("""
    import sys
    from bindcore.plugins import Registry, set_registry
    from bindcore.testing.stubs import (FeatureModality, StubPlugin, StubText, StubVision, make_feature_modality,
                                      tiny_recipe)

    class SpatialToy(FeatureModality):  # toyb's 16 features as a 4x4 map, so map augmentations apply
        name = "toyb"
        augment_axes = {"height": -2, "width": -1}

        def preprocess(self, inputs):
            return super().preprocess(inputs).view(-1, 1, 4, 4)

        def encode(self, x):
            return super().encode(x.flatten(1))

    registry = Registry(load_entry_points=False)
    registry.add_plugin(StubPlugin(StubVision, StubText, make_feature_modality("toya"), SpatialToy), name="stubs",
                        version="0")
    set_registry(registry)
    from bindcore.recipe import validate_recipe
    from bindcore.train.trainer import train
    raw = tiny_recipe(steps_epochs=12, checkpoint_every=3)
    raw["data"]["workers"] = 1  # batches built in a worker process
    # noise and jitter on toya's feature vectors; a RandomResizedCrop of its anchor images (own RNG stream)
    raw["modalities"]["toya"]["train"]["augmentation"] = {"gaussian_noise": 0.05, "color_jitter": 0.2,
                                                          "image_crop": {"scale": [0.3, 1.0]}}
    raw["modalities"]["toyb"]["train"]["learnable_temperature"] = True
    # RandAugment (its own RNG stream) and erasing on toyb's maps
    raw["modalities"]["toyb"]["train"]["augmentation"] = {"rand_augment": {"prob": 1.0}, "random_erase": 0.5}
    raw["modalities"]["toyb"]["drop_path"] = 0.2  # dropout draws from the restored global RNG
    train(validate_recipe(raw), sys.argv[1], log=lambda m: None)
""")


def _run_script(tmp_path: Path, out: Path, *, kill_after_checkpoint: bool) -> None:
    script = tmp_path / "run_tiny.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, str(script), str(out)], env=env)
    if kill_after_checkpoint:
        deadline = time.monotonic() + 120
        while not list_checkpoints(out / "checkpoints") and time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail("the run ended before it could be killed")
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.wait(timeout=300) == 0


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    _run_script(tmp_path, reference, kill_after_checkpoint=False)
    _run_script(tmp_path, resumed, kill_after_checkpoint=True)
    assert not (resumed / "modalities").exists()  # really killed mid-run
    _run_script(tmp_path, resumed, kill_after_checkpoint=False)
    for name in ("toya", "toyb"):
        a, b = _weights(reference, name), _weights(resumed, name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs after resume"


def test_gloo_ddp_two_processes_match_one_process(stubs, tmp_path):
    import socket

    import torch.multiprocessing as mp

    single = tmp_path / "single"
    train(validate_recipe(tiny_recipe(steps_epochs=2)), single, log=lambda _m: None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(tiny_ddp_worker, args=(2, port, str(tmp_path / "ddp")), nprocs=2, join=True)
    for name in ("toya", "toyb"):
        a, b = _weights(single, name), _weights(tmp_path / "ddp", name)
        for key in a:
            torch.testing.assert_close(a[key], b[key], atol=2e-4, rtol=1e-3)


def test_cache_anchor_command_then_training_reuses_it(stubs, tmp_path):
    import yaml
    from click.testing import CliRunner

    from bindcore.cli import cli

    raw = tiny_recipe()
    raw["anchor"]["cache_embeddings"] = True
    recipe_path = tmp_path / "tiny.yaml"
    recipe_path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["cache-anchor", str(recipe_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    (cache,) = (out / "anchor_cache").glob("anchor-*.npy")
    stamp = cache.stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["train", str(recipe_path), "--out", str(out), "--no-eval"])
    assert result.exit_code == 0, result.output
    assert cache.stat().st_mtime_ns == stamp  # reused, not recomputed
    assert (out / "modalities" / "toya" / "model.safetensors").is_file()


def test_learnable_temperature_moves_and_fixed_stays(stubs, tmp_path):
    raw = tiny_recipe()
    raw["modalities"]["toyb"]["train"]["learnable_temperature"] = True
    train(validate_recipe(raw), tmp_path / "run", log=lambda _m: None)
    temperatures = json.loads((tmp_path / "run" / "temperatures.json").read_text())
    assert temperatures["toya"] == pytest.approx(0.1)
    assert temperatures["toyb"] != pytest.approx(0.1, abs=1e-6)


def test_grad_checkpointing_flag_keeps_gradients():
    from bindcore.nn import Transformer
    from bindcore.train.trainer import enable_grad_checkpointing

    torch.manual_seed(0)
    trunk = Transformer(16, 2, 2)
    x = torch.randn(3, 5, 16)
    trunk(x).sum().backward()
    plain = [p.grad.clone() for p in trunk.parameters()]
    trunk.zero_grad()
    assert enable_grad_checkpointing(trunk) == 1 and trunk.grad_checkpointing
    trunk(x).sum().backward()
    for a, p in zip(plain, trunk.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad)


def test_grad_accumulation_trains(stubs, tmp_path):
    raw = tiny_recipe()
    for block in raw["modalities"].values():
        block["train"]["grad_accumulation"] = 2
    result = train(validate_recipe(raw), tmp_path / "run", log=lambda _m: None)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.final_losses.values())
