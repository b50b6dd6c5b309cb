"""Claiming a run directory before anything is written to it: one run's outputs never mix with another's.

* The same recipe resumes (``--resume auto``), or with ``--no-resume`` starts over after moving the earlier run's
  outputs (checkpoints, trained modalities, logs, evaluation) aside to ``previous-<UTC time>-<id>/`` (nothing is
  deleted, nothing is pruned by mistake, and ``--model RUN`` never serves the earlier run's weights).
* Another recipe's outputs (or outputs without a recipe record) are refused unless ``--overwrite``, which removes
  what a bindcore run writes there, and only that.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import yaml

from bindcore.errors import RunDirectoryError
from bindcore.io import atomic_file
from bindcore.recipe import ValidatedRecipe
from bindcore.train.checkpoint import any_checkpoint_files

CHECKPOINTS_DIR = "checkpoints"
FINGERPRINT_FILE = "recipe.fingerprint"
#: What a run writes into its directory (removed by ``--overwrite``, nothing else). ``anchor/`` and
#: ``anchor_cache/`` are not here: each records what made it and is rebuilt when that differs (``cache-anchor``
#: fills them before a run starts).
RECIPE_FILES = ("recipe.yaml", FINGERPRINT_FILE, "recipe.base")
RUN_OUTPUTS = (*RECIPE_FILES, CHECKPOINTS_DIR, "modalities", "tensorboard", "metrics.csv", "eval.json", "eval.png",
               "temperatures.json", "skipped.jsonl", "validation.json", "benchmarks")


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
        aside = out / f"previous-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:6]}"
        aside.mkdir()
        for path in existing:
            if path.name not in RECIPE_FILES:
                path.rename(aside / path.name)
        log(f"--no-resume: moved the earlier run's outputs aside to {aside}")
    # Relative paths in the recipe are relative to its file (or, for a recipe given as a mapping, the working
    # directory): recorded so that `bindcore eval RUN` resolves them the same way.
    base = recipe.source.parent if recipe.source is not None else Path.cwd()
    for path, text in ((out / "recipe.yaml", yaml.safe_dump(recipe.raw, sort_keys=False)),
                       (marker, fingerprint + "\n"), (out / "recipe.base", f"{base.resolve()}\n")):
        with atomic_file(path, "w") as handle:
            handle.write(text)


__all__ = ["CHECKPOINTS_DIR", "RECIPE_FILES", "RUN_OUTPUTS", "claim_run_directory", "run_outputs"]
