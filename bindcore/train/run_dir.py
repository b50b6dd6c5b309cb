"""Claiming a run directory before anything is written to it: one run's outputs never mix with another's.

* The same recipe resumes (``--resume auto``), or with ``--no-resume`` starts over after moving the old
  checkpoints aside to ``checkpoints.previous-<UTC time>/`` (nothing is deleted, nothing is pruned by mistake).
* Another recipe's outputs (or outputs without a recipe record) are refused unless ``--overwrite``, which removes
  what a bindcore run writes there, and only that.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from bindcore.errors import RunDirectoryError
from bindcore.recipe import ValidatedRecipe
from bindcore.train.checkpoint import any_checkpoint_files

CHECKPOINTS_DIR = "checkpoints"
FINGERPRINT_FILE = "recipe.fingerprint"
#: What a run writes into its directory (removed by ``--overwrite``, nothing else). ``anchor/`` and
#: ``anchor_cache/`` are not here: each records what made it and is rebuilt when that differs (``cache-anchor``
#: fills them before a run starts).
RUN_OUTPUTS = ("recipe.yaml", FINGERPRINT_FILE, "recipe.source", CHECKPOINTS_DIR, "modalities", "tensorboard",
               "metrics.csv", "eval.json", "eval.png", "temperatures.json", "skipped.jsonl")


def run_outputs(out: Path) -> list[Path]:
    return [out / name for name in RUN_OUTPUTS if (out / name).exists()]


def claim_run_directory(recipe: ValidatedRecipe, out: Path, *, fresh: bool, overwrite: bool,
                        log: Callable[[str], None] = print) -> None:
    """Make ``out`` ready for a run of ``recipe`` (``fresh``: start over instead of resuming), or refuse."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / FINGERPRINT_FILE
    fingerprint = recipe.fingerprint()
    recorded = marker.read_text().strip() if marker.is_file() else None
    existing = run_outputs(out)
    if existing and recorded != fingerprint:
        what = "a run of a different recipe" if recorded else "outputs of a run whose recipe is not recorded"
        if not overwrite:
            listed = ", ".join(p.name for p in existing[:6]) + (" …" if len(existing) > 6 else "")
            raise RunDirectoryError(f"{out} holds {what} ({listed}); choose another --out, or pass --overwrite to "
                                    f"replace that run")
        for path in existing:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        log(f"--overwrite: removed the previous run's outputs from {out}")
    elif fresh and any_checkpoint_files(out / CHECKPOINTS_DIR):
        aside = out / f"{CHECKPOINTS_DIR}.previous-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        (out / CHECKPOINTS_DIR).rename(aside)
        log(f"--no-resume: moved the earlier checkpoints aside to {aside}")
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe.raw, sort_keys=False))
    marker.write_text(fingerprint + "\n")
    if recipe.source is not None:  # recipe paths stay relative to the original file
        (out / "recipe.source").write_text(str(recipe.source) + "\n")


__all__ = ["CHECKPOINTS_DIR", "RUN_OUTPUTS", "claim_run_directory", "run_outputs"]
