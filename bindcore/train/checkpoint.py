"""Checkpoints that a resume can trust: atomic, rotated, checksummed, and read without unpickling code.

A checkpoint is two files: ``checkpoint-<step>.pt`` (``torch.save`` of tensors and plain data only: weights,
optimiser state, temperatures, step, RNG states as tensors and lists) and ``checkpoint-<step>.json`` (its SHA-256,
size and step), written after it. A checkpoint without its record is incomplete (a process killed between the two
writes) and is never resumed from. Reading checks the record's checksum first, then loads with
``torch.load(weights_only=True)``, which refuses any pickled object other than tensors and plain containers, so a
planted file cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bindcore.errors import CheckpointError
from bindcore.io import atomic_file

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d{8})\.pt$")
FORMAT = "bindcore-checkpoint/2"
#: The checkpoint kept by ``run.keep_best`` (beside the rolling ones, never pruned by them nor resumed from).
BEST_CHECKPOINT = "best.pt"


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"checkpoint-{step:08d}.pt"


def record_path(checkpoint: Path) -> Path:
    """The JSON record (checksum, size, step) beside ``checkpoint``."""
    return Path(checkpoint).with_suffix(".json")


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory`` (file and record present), oldest first; temporary files are ignored."""
    if not Path(directory).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(directory).iterdir()
             if (m := CHECKPOINT_PATTERN.match(p.name)) and record_path(p).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(directory: Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1] if found else None


def any_checkpoint_files(directory: Path) -> list[Path]:
    """Every checkpoint or record file in ``directory``, complete or not (what a new run must not mix with)."""
    if not Path(directory).is_dir():
        return []
    return sorted(p for p in Path(directory).iterdir() if p.name.startswith("checkpoint-"))


# -- RNG states as tensors and plain data (weights_only-loadable) -------------------------------------------------
def rng_state() -> dict[str, Any]:
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["position"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- writing ------------------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(directory: Path, step: int, payload: dict[str, Any], keep: int) -> Path:
    """Write ``payload`` and its record (each to a temporary file, fsync, ``os.replace``), then drop old ones.

    Only the newest ``keep`` complete checkpoints of this directory stay; the one just written is never dropped.
    """
    directory = Path(directory)
    target = checkpoint_path(directory, step)
    _write(target, step, payload)
    others = [p for p in list_checkpoints(directory) if p != target]
    for old in others[: max(0, len(others) + 1 - keep)]:
        old.unlink(missing_ok=True)
        record_path(old).unlink(missing_ok=True)
    for stale in [*directory.glob(".checkpoint-*.tmp-*"), *directory.glob(".best.*.tmp-*")]:  # a killed write's
        stale.unlink(missing_ok=True)
    return target


def _write(target: Path, step: int, payload: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as handle:  # fsync'ed, then renamed into place
        torch.save({"format": FORMAT, **payload}, handle)
    record = {"format": FORMAT, "step": step, "bytes": target.stat().st_size, "sha256": _sha256(target),
              **(extra or {})}
    with atomic_file(record_path(target), "w") as handle:
        handle.write(json.dumps(record, indent=2))


def save_best_checkpoint(directory: Path, step: int, payload: dict[str, Any], metric: str, value: float) -> Path:
    """Write ``directory/best.pt`` and its record (which also names ``metric`` and its ``value``), replacing the
    previous best; the rolling checkpoints' pruning never touches it."""
    target = Path(directory) / BEST_CHECKPOINT
    _write(target, step, payload, {"metric": metric, "value": value})
    return target


def best_checkpoint_record(directory: Path) -> dict[str, Any] | None:
    """The record of ``directory/best.pt`` (step, metric, value, checksum) when both files are there, else None."""
    target = Path(directory) / BEST_CHECKPOINT
    try:
        record = json.loads(record_path(target).read_text())
    except (OSError, ValueError):
        return None
    return record if target.is_file() and isinstance(record, dict) and "value" in record else None


# -- reading ------------------------------------------------------------------------------------------------------
def load_checkpoint(path: Path) -> dict[str, Any]:
    """The payload of checkpoint ``path``, after checking its record; :class:`CheckpointError` names what is wrong."""
    path = Path(path)
    record_file = record_path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        record = json.loads(record_file.read_text())
        expected, size = str(record["sha256"]), int(record["bytes"])
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} has no record {record_file.name} (its write did not finish, or it "
                              f"was not written by bindcore)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint record {record_file} is unreadable ({type(exc).__name__}: {exc})") from None
    actual_size = path.stat().st_size
    if actual_size != size:
        raise CheckpointError(f"checkpoint {path} is {actual_size} bytes, its record says {size} (truncated or "
                              f"overwritten)")
    if _sha256(path) != expected:
        raise CheckpointError(f"checkpoint {path} does not match its recorded SHA-256 (the file is damaged)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for anything but tensors and plain data, and every damaged form
        raise CheckpointError(f"checkpoint {path} cannot be read as a bindcore checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a {FORMAT} checkpoint")
    return payload


def newest_good_checkpoint(directory: Path, warn: Callable[[str], None], *, set_aside: bool = True
                           ) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint of ``directory`` that reads back intact, warning about each newer one that
    does not (a checkpoint whose record is missing was never finished and is passed over silently).

    None when the directory holds no complete checkpoint; :class:`CheckpointError` when it holds some and none is
    intact. ``set_aside`` (one process of a run: rank 0) renames the damaged ones passed over to ``*.damaged`` once an
    intact one is found, kept for a look but out of rotation and later resumes. When none is intact nothing is
    renamed, so a rerun stops with the same error instead of silently starting over.
    """
    problems, damaged = [], []
    for path in reversed(list_checkpoints(directory)):  # complete ones only: a file without its record is unfinished
        try:
            payload = load_checkpoint(path)
        except CheckpointError as exc:
            problems.append(str(exc))
            damaged.append(path)
            warn(f"warning: skipping {exc}; trying an older checkpoint")
            continue
        for bad in damaged if set_aside else ():
            for part in (bad, record_path(bad)):
                if part.exists():
                    part.rename(part.with_name(part.name + ".damaged"))
        return path, payload
    if problems:
        raise CheckpointError(f"no intact checkpoint in {directory}:\n  " + "\n  ".join(problems)
                              + "\nstart over with --no-resume (the earlier outputs are moved aside), or restore a "
                                "checkpoint from a backup")
    return None


__all__ = ["BEST_CHECKPOINT", "CheckpointError", "any_checkpoint_files", "best_checkpoint_record", "checkpoint_path",
           "latest_checkpoint", "list_checkpoints", "load_checkpoint", "newest_good_checkpoint", "record_path",
           "rng_state", "save_best_checkpoint", "save_checkpoint", "set_rng_state"]
