"""Validation during training (``modalities.<name>.data.val``, ``run.val_every``, ``run.keep_best``), the toy eval
restricted to toy-trained modalities, and ``eval.benchmarks`` at the end of ``bindcore train``."""

from __future__ import annotations

import csv
import importlib.util
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from bindcore.errors import ConfigError
from bindcore.recipe import load_recipe, validate_recipe
from bindcore.testing.stubs import tiny_recipe
from bindcore.train.checkpoint import BEST_CHECKPOINT, checkpoint_path, list_checkpoints, load_checkpoint
from bindcore.train.trainer import train


def _quiet(_message: str) -> None:
    return None


def _weights(out: Path, name: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "modalities" / name / "model.safetensors"))


def _with_val(raw: dict, **run) -> dict:
    """``raw`` with a toy validation split (its own seed) for both stub modalities."""
    for name, seed in (("toya", 5), ("toyb", 6)):
        raw["modalities"][name]["data"] = {"val": {"kind": "toy", "scenes": 24, "seed": seed}}
    raw["run"].update(run)
    return raw


def _metrics_rows(out: Path) -> list[dict[str, str]]:
    with (out / "metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _validation_rows(out: Path) -> list[dict[str, str]]:
    return [row for row in _metrics_rows(out) if row.get("val/toya/loss")]


def _pairs(folder: Path, name: str, rows: int, seed: int) -> Path:
    """A JSONL manifest of ``rows`` (image, ``name``) pairs of ``.npy`` files that the stubs read."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for row in range(rows):
        np.save(folder / f"{row}.image.npy", rng.random((3, 16, 16), dtype=np.float32))
        np.save(folder / f"{row}.{name}.npy", rng.standard_normal(16).astype(np.float32))
        lines.append(json.dumps({"image": f"{row}.image.npy", name: f"{row}.{name}.npy"}))
    manifest = folder / "pairs.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


# -- the recipe ----------------------------------------------------------------------------------------------------
def _problems(raw: dict, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        validate_recipe(raw, **kwargs)
    return str(info.value)


def test_recipe_errors_name_the_yaml_path(stubs, tmp_path):
    raw = tiny_recipe()
    raw["modalities"]["toya"]["data"] = {"val": {"kind": "csv"}}
    assert "modalities.toya.data.val.kind: Input should be 'toy', 'manifest' or 'webdataset'" in _problems(raw)

    raw = tiny_recipe()
    raw["modalities"]["toya"]["data"] = {"val": {"kind": "manifest"}}
    assert "modalities.toya.data.val: Value error, kind 'manifest' needs a 'manifest' path" in _problems(raw)

    raw = _with_val(tiny_recipe(), keep_best={"metric": "val/toya/image->toya R@2"})
    message = _problems(raw)
    assert "run.keep_best.metric: unknown metric 'val/toya/image->toya R@2'; did you mean " \
           "'val/toya/image->toya R@5'?" in message
    assert "'val/toyb/toyb->image R@1'" in message  # the metrics that will exist are listed

    raw = tiny_recipe(keep_best={"metric": "val/toya/loss"})
    assert "run.keep_best.metric: 'val/toya/loss' cannot be logged: no modality has a validation split" \
        in _problems(raw)

    raw = _with_val(tiny_recipe(), keep_best={"metric": "val/toya/loss", "mode": "best"})
    assert "run.keep_best.mode: Input should be 'max' or 'min'" in _problems(raw)

    raw = tiny_recipe()
    raw["modalities"]["toya"]["data"] = {"val": {"kind": "manifest", "manifest": str(tmp_path / "val.jsonl")}}
    raw["eval"]["benchmarks"] = [{"name": "esc50", "root": str(tmp_path / "ESC-50-master"), "modality": "audio"}]
    message = _problems(raw)
    assert f"modalities.toya.data.val.manifest: file not found: {tmp_path / 'val.jsonl'}" in message
    assert "eval.benchmarks.0.modality: 'audio' is not one of this run's modalities (toya, toyb)" in message
    assert f"eval.benchmarks.0.root: not found: {tmp_path / 'ESC-50-master'}" in message

    raw = tiny_recipe()
    raw["modalities"]["toya"]["data"] = {"val": {"kind": "manifest", "manifest": str(_pairs(tmp_path / "few",
                                                                                              "toya", 3, 0))}}
    assert "modalities.toya.data.val: 3 items; validation needs at least 5 (for R@5)" in _problems(raw)


def test_validation_settings_leave_the_fingerprint_alone(stubs):
    plain = validate_recipe(tiny_recipe())
    watched = validate_recipe(_with_val(tiny_recipe(), val_every=3, keep_best={"metric": "val/toya/loss"}))
    assert plain.fingerprint() == watched.fingerprint()  # a run may add validation and still resume


# -- training with validation ----------------------------------------------------------------------------------------
def test_validation_rows_at_the_right_steps_and_best_checkpoint_not_the_last(stubs, tmp_path):
    """Loss falls as the run trains, so the checkpoint with the *highest* held-out loss is the first validated one:
    best.pt must hold that step's weights although rotation has long dropped its rolling checkpoint."""
    def recipe(**run) -> dict:
        raw = tiny_recipe(**run)
        raw["modalities"]["toyb"]["drop_path"] = 0.2  # training draws from the global RNG that validation must keep
        return raw

    reference = tmp_path / "reference"
    train(validate_recipe(recipe(checkpoint_every=4, keep_checkpoints=100)), reference, log=_quiet)
    out = tmp_path / "validated"
    raw = _with_val(recipe(checkpoint_every=4, keep_checkpoints=2),
                    keep_best={"metric": "val/toya/loss", "mode": "max"})
    logged: list[str] = []
    result = train(validate_recipe(raw), out, log=logged.append)

    rows = _validation_rows(out)
    steps = [int(row["step"]) for row in rows]
    assert steps == list(range(4, result.steps + 1, 4)) and steps[-1] == result.steps == 24
    for row in rows:
        assert row["modality"] == "" and row["loss"] == ""  # validation rows carry only validation columns
        for name in ("toya", "toyb"):
            assert float(row[f"val/{name}/loss"]) > 0
            for column in (f"image->{name} R@1", f"image->{name} R@5", f"{name}->image R@1", f"{name}->image R@5"):
                assert 0.0 <= float(row[f"val/{name}/{column}"]) <= 1.0
            assert float(row[f"val/{name}/image->{name} R@5"]) >= float(row[f"val/{name}/image->{name} R@1"])
    losses = [float(row["val/toya/loss"]) for row in rows]
    assert losses[-1] < losses[0]  # it learned, so the maximum is not the last
    best_step = steps[losses.index(max(losses))]
    assert best_step != result.steps

    best = out / "checkpoints" / BEST_CHECKPOINT
    payload = load_checkpoint(best)  # checksummed record beside it
    record = json.loads(best.with_suffix(".json").read_text())
    assert payload["step"] == record["step"] == best_step
    assert record["metric"] == "val/toya/loss" and record["value"] == pytest.approx(max(losses), abs=1e-6)
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["checkpoint-00000020.pt",
                                                                        "checkpoint-00000024.pt"]
    same_step = load_checkpoint(checkpoint_path(reference / "checkpoints", best_step))
    for name in ("toya", "toyb"):
        for key, tensor in same_step["heads"][name].items():
            assert torch.equal(payload["heads"][name][key], tensor), f"best.pt {name}.{key}"
        # validation leaves the training RNG stream alone: the same weights as the run without it
        a, b = _weights(reference, name), _weights(out, name)
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs with validation on"

    report = json.loads((out / "validation.json").read_text())
    assert report["step"] == 24 and report["best"]["step"] == best_step
    assert report["data"]["toya"] == {"source": "toy world, 24 held-out scenes, seed 5", "items": 24}
    assert any(line.startswith("validation at step 4: toya loss") for line in logged)


def test_validation_under_gloo_ddp_matches_one_process(stubs, tmp_path):
    """Two gloo ranks: rank 0 validates while the other waits, at the same steps, with the values one process logs;
    the best checkpoint is written once, and validation still leaves the training stream alone."""
    import socket

    import torch.multiprocessing as mp

    from bindcore.testing.stubs import tiny_ddp_worker

    raw = _with_val(tiny_recipe(steps_epochs=2, checkpoint_every=4), keep_best={"metric": "val/toya/loss"})
    single = tmp_path / "single"
    train(validate_recipe(raw), single, log=_quiet)
    plain = tmp_path / "plain"  # DDP without validation: the weights validation must not change
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(tiny_ddp_worker, args=(2, port, str(tmp_path / "ddp"), 2, raw), nprocs=2, join=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(tiny_ddp_worker, args=(2, port, str(plain), 2, tiny_recipe(steps_epochs=2, checkpoint_every=4)),
             nprocs=2, join=True)

    one, two = _validation_rows(single), _validation_rows(tmp_path / "ddp")
    assert [row["step"] for row in two] == [row["step"] for row in one] and len(one) >= 2
    for a, b in zip(one, two, strict=True):
        for column in ("val/toya/loss", "val/toyb/loss"):
            assert float(b[column]) == pytest.approx(float(a[column]), rel=1e-3, abs=1e-4), (column, a, b)
    report = json.loads((tmp_path / "ddp" / "validation.json").read_text())
    assert report["best"]["step"] == json.loads((single / "validation.json").read_text())["best"]["step"]
    assert load_checkpoint(tmp_path / "ddp" / "checkpoints" / BEST_CHECKPOINT)["step"] == report["best"]["step"]
    for name in ("toya", "toyb"):
        a, b = _weights(plain, name), _weights(tmp_path / "ddp", name)
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs with validation on under DDP"


def test_val_every_and_tensorboard(stubs, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train(validate_recipe(_with_val(tiny_recipe(), val_every=10, tensorboard=True)), out, log=_quiet)
    assert [int(row["step"]) for row in _validation_rows(out)] == [10, 20, 24]  # and always at the last step
    (events,) = (out / "tensorboard").glob("events.*")
    scalars = EventAccumulator(str(events)).Reload()
    assert [event.step for event in scalars.Scalars("val/toyb/image->toyb R@1")] == [10, 20, 24]


_TRAIN_TESTS_PATH = Path(__file__).with_name("test_train.py")


def _train_tests() -> types.ModuleType:
    """tests/test_train.py as a module (its SIGKILL-and-resume script and runner)."""
    spec = importlib.util.spec_from_file_location("bindcore_test_train_helpers", _TRAIN_TESTS_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigkill_then_resume_with_validation_is_bit_identical(tmp_path):
    helpers = _train_tests()
    anchor = "train(validate_recipe(raw), sys.argv[1], log=lambda m: None)"
    assert anchor in helpers.SCRIPT
    helpers.SCRIPT = helpers.SCRIPT.replace(anchor, (
        "for name, seed in (('toya', 5), ('toyb', 6)):\n"
        "    raw['modalities'][name]['data'] = {'val': {'kind': 'toy', 'scenes': 16, 'seed': seed}}\n"
        "raw['run']['val_every'] = 2\n"
        "raw['run']['keep_best'] = {'metric': 'val/toyb/toyb->image R@1'}\n" + anchor))
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    helpers._run_script(tmp_path, reference, kill_after_checkpoint=False)
    helpers._run_script(tmp_path, resumed, kill_after_checkpoint=True)
    assert not (resumed / "modalities").exists()
    helpers._run_script(tmp_path, resumed, kill_after_checkpoint=False)
    for name in ("toya", "toyb"):
        a, b = _weights(reference, name), _weights(resumed, name)
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs after resume with validation"
    columns = [c for c in _metrics_rows(reference)[0] if c.startswith("val/")]
    expected = [[row[c] for c in ("step", *columns)] for row in _metrics_rows(reference) if row["val/toya/loss"]]
    got = [[row[c] for c in ("step", *columns)] for row in _metrics_rows(resumed) if row["val/toya/loss"]]
    assert got == expected and len(expected) > 3  # each validation once, with the same values
    best = [json.loads((run / "checkpoints" / "best.json").read_text()) for run in (reference, resumed)]
    assert (best[0]["step"], best[0]["value"]) == (best[1]["step"], best[1]["value"])


# -- what the end of `bindcore train` reports ------------------------------------------------------------------------
def _cli_recipe(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_manifest_trained_run_reports_validation_and_no_toy_scores(stubs, tmp_path):
    from bindcore.cli import cli

    raw = tiny_recipe("toya", steps_epochs=2)
    train_manifest = _pairs(tmp_path / "train", "toya", 32, 0)
    _pairs(tmp_path / "val", "toya", 12, 1)
    raw["modalities"]["toya"]["data"] = {"kind": "manifest", "manifest": str(train_manifest),
                                         "val": {"kind": "manifest", "manifest": "val/pairs.jsonl"}}
    recipe = _cli_recipe(tmp_path, raw)
    checked = CliRunner().invoke(cli, ["train", str(recipe), "--check"])
    assert checked.exit_code == 0, checked.output
    assert "modalities.toya.data.val: 12 held-out pairs in val/pairs.jsonl" in checked.output
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "eval.json").exists()
    assert "toy-world eval: skipped (no modality trained on the toy world)" in result.output
    assert "Zero-shot classification" not in result.output and "Toy-world eval on" not in result.output
    table = result.output[result.output.index("Validation at step 4"):]
    assert f"validation manifest {tmp_path / 'val' / 'pairs.jsonl'}, 12 items" in table
    assert table.splitlines()[1].split()[:3] == ["modality", "loss", "img->m"]
    assert table.splitlines()[2].split()[0] == "toya"

    from bindcore.eval.run import evaluate_run_dir

    with pytest.raises(ConfigError, match=r"toy-world eval does not apply: no modality of this run trained on the "
                                          r"toy world \(toya: manifest data\)"):
        evaluate_run_dir(out, log=_quiet)


def test_a_webdataset_val_split_gives_the_values_of_the_same_pairs_as_a_manifest(stubs, tmp_path):
    import webdataset

    manifest = _pairs(tmp_path / "val", "toya", 12, 1)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for shard in range(2):  # the same 12 pairs, in the same order, as two shards
        with webdataset.TarWriter(str(tmp_path / "val" / f"val-{shard:06d}.tar")) as sink:
            for position, row in enumerate(rows[6 * shard:6 * (shard + 1)]):
                sink.write({"__key__": f"v{shard}_{position:02d}",
                            "image.npy": (tmp_path / "val" / row["image"]).read_bytes(),
                            "toya.npy": (tmp_path / "val" / row["toya"]).read_bytes()})
    splits = {"manifest": {"kind": "manifest", "manifest": str(manifest)},
              "webdataset": {"kind": "webdataset", "shards": str(tmp_path / "val" / "val-{000000..000001}.tar")}}
    logged = {}
    for kind, split in splits.items():
        raw = tiny_recipe("toya", steps_epochs=2)
        raw["modalities"]["toya"]["data"] = {"val": split}
        train(validate_recipe(raw), tmp_path / kind, log=_quiet)
        logged[kind] = _validation_rows(tmp_path / kind)
    columns = [c for c in logged["manifest"][0] if c.startswith("val/")]
    assert len(logged["manifest"]) >= 2 and len(columns) == 5
    assert [[row[c] for c in ("step", *columns)] for row in logged["webdataset"]] == \
        [[row[c] for c in ("step", *columns)] for row in logged["manifest"]]
    report = json.loads((tmp_path / "webdataset" / "validation.json").read_text())
    assert report["data"]["toya"]["items"] == 12 and report["data"]["toya"]["source"].startswith("validation shards")


def test_a_mixed_run_scores_only_its_toy_modalities_and_names_the_data(stubs, tmp_path):
    from bindcore.cli import cli

    raw = tiny_recipe(steps_epochs=2)
    raw["modalities"]["toya"]["data"] = {"kind": "manifest", "manifest": str(_pairs(tmp_path / "a", "toya", 32, 0))}
    raw["modalities"]["toyb"]["data"] = {"val": {"kind": "toy", "scenes": 20, "seed": 3}}
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(_cli_recipe(tmp_path, raw)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    assert set(report["zero_shot_top1"]) == {"toyb"} and report["retrieval_r1"] == {}
    assert report["skipped"]["toya"] == "trained on manifest data, not the toy world"
    assert report["data"] == "toy world, 40 held-out scenes, seed 1000003"
    assert "Toy-world eval on: toy world, 40 held-out scenes, seed 1000003" in result.output
    validation = result.output.index("Validation at step")
    assert "toy world, 20 held-out scenes, seed 3" in result.output[validation:]
    assert validation < result.output.index("Zero-shot classification")  # then the toy table


def test_eval_benchmarks_are_checked_against_the_registry(stubs, tmp_path):
    raw = tiny_recipe()
    raw["eval"]["benchmarks"] = [{"name": "labeled", "root": str(tmp_path)},
                                 {"name": "labelled", "root": str(tmp_path)},
                                 {"name": "labelled", "root": str(tmp_path), "modality": "toya",
                                  "options": {"colour": "red"}},
                                 {"name": "pairs", "root": str(tmp_path), "modality": "toyb",
                                  "options": {"query": "toya"}}]
    message = _problems(raw)
    assert "eval.benchmarks.0.name: unknown benchmark 'labeled', did you mean 'labelled'?" in message
    assert "eval.benchmarks.1.modality: benchmark 'labelled' works on any modality: name one of this run's " \
           "(toya, toyb)" in message
    assert "eval.benchmarks.2.options.colour: unknown key" in message
    assert "eval.benchmarks.3" not in message


def test_eval_benchmarks_run_at_the_end_on_the_run_directory(stubs, tmp_path):
    from bindcore.cli import cli

    # the core's `pairs` benchmark: toyb queries retrieve their toya partners (the stubs' text side cannot embed)
    data = tmp_path / "pairs"
    data.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for row in range(8):
        for name in ("toya", "toyb"):
            np.save(data / f"{row}.{name}.npy", rng.standard_normal(16).astype(np.float32))
        rows.append(json.dumps({"toya": f"{row}.toya.npy", "toyb": f"{row}.toyb.npy"}))
    (data / "pairs.jsonl").write_text("\n".join(rows) + "\n")
    raw = tiny_recipe(steps_epochs=1)
    raw["eval"]["benchmarks"] = [{"name": "pairs", "root": "pairs/pairs.jsonl", "modality": "toya",
                                  "options": {"query": "toyb"}}]
    recipe = _cli_recipe(tmp_path, raw)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"benchmark pairs (toya) on {data / 'pairs.jsonl'}" in result.output
    written = json.loads((out / "benchmarks" / "pairs.json").read_text())
    assert written["benchmark"] == "pairs" and written["task"] == "retrieval" and written["modality"] == "toya"
    assert all(0.0 <= value <= 1.0 for value in written["metrics"].values()) and "R@1" in written["metrics"]
    (out / "benchmarks" / "pairs.json").unlink()
    again = CliRunner().invoke(cli, ["train", str(recipe), "--out", str(out), "--no-eval"])
    assert again.exit_code == 0, again.output
    assert not (out / "benchmarks" / "pairs.json").exists()  # --no-eval skips them


def test_demo_recipe_validates_with_validation(tmp_path):
    demo = load_recipe(Path(__file__).parents[1] / "recipes" / "demo.yaml", check_files=False)
    assert all(block.data.val is not None and block.data.val.kind == "toy" for block in demo.modalities.values())
    assert {block.data.val.seed for block in demo.modalities.values()} != {demo.data.toy.seed}
