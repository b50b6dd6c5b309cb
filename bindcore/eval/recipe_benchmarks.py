"""A recipe's ``eval.benchmarks``: named benchmarks (``bindcore benchmark``) run at the end of ``bindcore train`` on
the run's own modalities and anchor (the run directory is the model), results under ``RUN/benchmarks/``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BENCHMARKS_DIR = "benchmarks"


def run_recipe_benchmarks(setup: Any, *, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every ``eval.benchmarks`` entry of ``setup``'s recipe on its run directory (which must hold the trained
    modalities: call after training); each writes ``RUN/benchmarks/<name>.json`` (and its plot). Returns the results
    in recipe order."""
    from bindcore.eval.benchmarks.run import run_benchmark

    recipe = setup.recipe
    out = setup.out / BENCHMARKS_DIR
    results = []
    for entry in recipe.eval.benchmarks:
        log(f"benchmark {entry.name}" + (f" ({entry.modality})" if entry.modality else "")
            + f" on {recipe.resolve(entry.root)}")
        results.append(run_benchmark(entry.name, recipe.resolve(entry.root), setup.out, modality=entry.modality,
                                     out=out, batch_size=entry.batch_size or recipe.eval.batch_size,
                                     device=str(setup.ctx.device), options=dict(entry.options), log=log))
    return results


__all__ = ["BENCHMARKS_DIR", "run_recipe_benchmarks"]
