"""Run directories and checkpoints as an attacker or a careless user meets them: no pickle runs code, a damaged
checkpoint falls back to the newest intact one, ``--no-resume`` never mixes two runs, another recipe's run is never
silently overwritten."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from bindcore.errors import BindcoreError, CheckpointError, RunDirectoryError
from bindcore.recipe import validate_recipe
from bindcore.testing.stubs import tiny_recipe
from bindcore.train.checkpoint import list_checkpoints, load_checkpoint, record_path
from bindcore.train.trainer import train


class _Crash(RuntimeError):
    pass


def _crash_at(step_to_crash: int):
    def hook(step, _batch):
        if step == step_to_crash:
            raise _Crash(f"simulated crash at step {step}")
    return hook


def _quiet(_message: str) -> None:
    return None


class _Evil:
    """Unpickling this runs ``touch MARKER``: what a planted checkpoint would do to a loader that trusts pickles."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant_pickle(path: Path, marker: Path, *, with_record: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "bindcore-checkpoint/2", "step": 99, "payload": _Evil(marker)}, path)
    if with_record:  # a matching checksum record: the loader gets as far as unpickling
        record = {"format": "bindcore-checkpoint/2", "step": 99, "bytes": path.stat().st_size,
                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        record_path(path).write_text(json.dumps(record))


def test_the_planted_pickle_really_runs_code_when_trusted(tmp_path) -> None:
    # The fixture is dangerous: without weights_only it executes (so the tests below can fail).
    marker = tmp_path / "pwned"
    _plant_pickle(tmp_path / "evil.pt", marker, with_record=False)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


def test_no_route_unpickles_a_planted_file(stubs, tmp_path) -> None:
    from bindcore.anchor import load_anchor, tiny_anchor_config

    marker = tmp_path / "pwned"
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        train(validate_recipe(tiny_recipe()), out, log=_quiet, step_hook=_crash_at(12))
    # 1. --resume naming a planted file, with and without a matching record
    for with_record in (False, True):
        evil = tmp_path / f"evil-{with_record}.pt"
        _plant_pickle(evil, marker, with_record=with_record)
        with pytest.raises(CheckpointError, match=re.escape(str(evil))):
            train(validate_recipe(tiny_recipe()), out, resume=str(evil), log=_quiet)
    # 2. planted as the run's latest checkpoint: auto-resume warns, names it, and takes the newest intact one
    planted = out / "checkpoints" / "checkpoint-00000099.pt"
    _plant_pickle(planted, marker, with_record=True)
    messages: list[str] = []
    train(validate_recipe(tiny_recipe()), out, log=messages.append)
    assert any(str(planted) in m and "skipping" in m for m in messages), messages
    assert any("resuming from" in m and "checkpoint-00000010.pt" in m for m in messages), messages
    # 3. planted as the old tiny-anchor file: nothing reads it any more (the anchor is a safetensors folder)
    _plant_pickle(out / "anchor" / "anchor.pt", marker, with_record=False)
    train(validate_recipe(tiny_recipe()), out, log=_quiet)
    # 4. as the anchor's weights (a safetensors name holding a pickle, and a .pt checkpoint of an arch)
    weights = out / "anchor" / "open_clip_model.safetensors"
    weights.write_bytes((tmp_path / "evil-False.pt").read_bytes())
    with pytest.raises(BindcoreError):
        from bindcore.eval.run import evaluate_run_dir

        evaluate_run_dir(out, log=_quiet)
    with pytest.raises(BindcoreError, match=re.escape("evil-False.pt")):
        load_anchor(arch=tiny_anchor_config(), checkpoint=str(tmp_path / "evil-False.pt"))
    # 5. as a saved modality's weights
    (out / "modalities" / "toya" / "model.safetensors").write_bytes((tmp_path / "evil-False.pt").read_bytes())
    with pytest.raises(Exception):  # noqa: B017 (safetensors' own parse error; what matters is the marker)
        from bindcore.io import load_modality

        load_modality(out / "modalities" / "toya")
    assert not marker.exists(), "a planted pickle ran code"


def _weights(out: Path, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(out / "modalities" / name / "model.safetensors"))


@pytest.mark.parametrize("damage", ["empty", "truncated", "random-bytes", "flipped-tensor-bytes", "no-record"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(stubs, tmp_path, damage: str) -> None:
    reference = tmp_path / "reference"
    train(validate_recipe(tiny_recipe()), reference, log=_quiet)
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        train(validate_recipe(tiny_recipe()), out, log=_quiet, step_hook=_crash_at(12))
    latest = out / "checkpoints" / "checkpoint-00000010.pt"
    data = latest.read_bytes()
    if damage == "empty":
        latest.write_bytes(b"")
    elif damage == "truncated":
        latest.write_bytes(data[: len(data) // 2])
    elif damage == "random-bytes":
        latest.write_bytes(os.urandom(len(data)))
    elif damage == "flipped-tensor-bytes":  # same size, still unpicklable: only the checksum can tell
        middle = len(data) // 2
        latest.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + data[middle + 64:])
    else:
        record_path(latest).unlink()
    messages: list[str] = []
    train(validate_recipe(tiny_recipe()), out, log=messages.append)
    if damage != "no-record":  # a checkpoint without its record is incomplete, hence not a candidate at all
        assert any("checkpoint-00000010.pt" in m and "skipping" in m for m in messages), messages
    assert any("resuming from" in m and "checkpoint-00000005.pt" in m for m in messages), messages
    for name in ("toya", "toyb"):  # resuming from the older checkpoint still ends where an unbroken run ends
        a, b = _weights(reference, name), _weights(out, name)
        assert all(torch.equal(a[key], b[key]) for key in a)


def test_no_intact_checkpoint_is_a_typed_error_naming_each_file(stubs, tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(_Crash):
        train(validate_recipe(tiny_recipe()), out, log=_quiet, step_hook=_crash_at(12))
    for path in list_checkpoints(out / "checkpoints"):
        path.write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError) as info:
        train(validate_recipe(tiny_recipe()), out, log=_quiet)
    assert "checkpoint-00000005.pt" in str(info.value) and "checkpoint-00000010.pt" in str(info.value)
    assert "--no-resume" in str(info.value)


def test_the_cli_reports_a_damaged_checkpoint_instead_of_aborting(stubs, tmp_path) -> None:
    from bindcore.cli import cli

    out = tmp_path / "run"
    with pytest.raises(_Crash):
        train(validate_recipe(tiny_recipe()), out, log=_quiet, step_hook=_crash_at(7))
    (only,) = list_checkpoints(out / "checkpoints")
    only.write_bytes(b"")
    recipe = tmp_path / "tiny.yaml"
    import yaml

    recipe.write_text(yaml.safe_dump(tiny_recipe()))
    # the run directory was made from the mapping, not this file: same content, so the same fingerprint
    result = CliRunner().invoke(cli, ["train", str(recipe), "--out", str(out), "--no-eval"])
    assert result.exit_code == 1
    assert "CheckpointError" in result.output and str(only) in result.output
    assert "Aborted" not in result.output


def test_no_resume_moves_the_old_checkpoints_aside_and_never_mixes_runs(stubs, tmp_path) -> None:
    out = tmp_path / "run"
    train(validate_recipe(tiny_recipe()), out, log=_quiet)
    old = {p.name for p in list_checkpoints(out / "checkpoints")}
    with pytest.raises(_Crash):
        train(validate_recipe(tiny_recipe()), out, resume=False, log=_quiet, step_hook=_crash_at(7))
    # The new run's checkpoint survives rotation, and only it is there: a rerun resumes the new run.
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["checkpoint-00000005.pt"]
    assert load_checkpoint(out / "checkpoints" / "checkpoint-00000005.pt")["step"] == 5
    (aside,) = out.glob("previous-*")
    assert {p.name for p in list_checkpoints(aside / "checkpoints")} == old
    assert (aside / "modalities" / "toya").is_dir()  # the earlier run's weights went aside too, not left to serve


def test_another_recipe_is_refused_unless_overwrite(stubs, tmp_path) -> None:
    out = tmp_path / "run"
    first = tiny_recipe()
    train(validate_recipe(first), out, log=_quiet)
    for path in (out / "checkpoints").iterdir():  # the careless case: outputs without checkpoints
        path.unlink()
    other = tiny_recipe("toya")
    before = {p.name: p.stat().st_mtime_ns for p in (out / "modalities").rglob("*") if p.is_file()}
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        train(validate_recipe(other), out, log=_quiet)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "modalities").rglob("*") if p.is_file()}
    assert before == after and "toyb" in {p.name for p in (out / "modalities").iterdir()}
    train(validate_recipe(other), out, overwrite=True, log=_quiet)
    assert not (out / "modalities" / "toyb").exists()  # the replaced run left nothing of its own behind
    assert (out / "modalities" / "toya").is_dir()
