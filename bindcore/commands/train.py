"""``bindcore train RECIPE --out DIR``: validate the recipe, train (validating on held-out splits), then evaluate:
the validation table, the toy-world eval of the modalities trained on the toy world (``DIR/eval.json``) and the
recipe's ``eval.benchmarks`` (``DIR/benchmarks/``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


def register(cli: click.Group) -> None:
    @cli.command("train")
    @click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Run directory (default: runs/<recipe name>). Re-running resumes from its latest checkpoint.")
    @click.option("--resume", "resume", type=str, default=None,
                  help="Resume from this checkpoint file (default: the run directory's latest, if any).")
    @click.option("--no-resume", is_flag=True,
                  help="Start over even if the run directory has checkpoints (the earlier run's outputs are moved "
                       "aside to previous-<time>-<id>/, not deleted).")
    @click.option("--overwrite", is_flag=True,
                  help="Replace the run of a different recipe in --out (its checkpoints, weights and logs).")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                  help="Override a recipe value, e.g. --set modalities.audio.train.lr=1e-4 (repeatable).")
    @click.option("--check", is_flag=True, help="Only validate the recipe and read its data (every manifest row "
                                                "and file, every shard), then exit.")
    @click.option("--no-eval", is_flag=True, help="Skip the evaluation at the end (toy eval and benchmarks).")
    def train_command(recipe: Path, out: Path | None, resume: str | None, no_resume: bool, overwrite: bool,
                      overrides: tuple[str, ...], check: bool, no_eval: bool) -> None:
        """Bind the modalities of RECIPE to its frozen anchor (each step trains one anchor–modality pair)."""
        from bindcore.errors import BindcoreError
        from bindcore.recipe import load_recipe

        started = time.perf_counter()
        checked: list[str] = []  # what the data check read: every manifest row, every shard's member list
        try:
            validated = load_recipe(recipe, overrides=list(overrides), checked=checked)
        except BindcoreError as exc:
            raise click.ClickException(str(exc)) from None
        if check:
            for line in checked:
                click.echo(f"  {line}")
            click.echo(f"{recipe}: valid ({', '.join(validated.modalities)})")
            return
        from bindcore.eval.run import evaluate, trained_elsewhere
        from bindcore.run_setup import RunSetup
        from bindcore.train.trainer import Trainer
        from bindcore.train.validation import format_validation_table, read_validation

        out = out or Path("runs") / validated.name
        mode: bool | str = False if no_resume else (resume or "auto")
        try:
            setup = RunSetup(validated, out, log=click.echo)
            trainer = Trainer(setup, resume=mode, overwrite=overwrite)
            trainer.fit()
            report = read_validation(out) if trainer.validation is not None and setup.ctx.is_main else None
            if report is not None:
                click.echo(format_validation_table(report))
            if validated.eval.enabled and not no_eval:
                elsewhere = trained_elsewhere(validated, trainer.modules)
                if len(elsewhere) < len(trainer.modules):
                    setup.ctx.run_on_main(lambda: evaluate(setup, trainer.modules, log=click.echo), "evaluating")
                else:
                    click.echo("toy-world eval: skipped (no modality trained on the toy world)")
                if validated.eval.benchmarks:
                    from bindcore.eval.recipe_benchmarks import run_recipe_benchmarks

                    setup.ctx.run_on_main(lambda: run_recipe_benchmarks(setup, log=click.echo),
                                          "running eval.benchmarks")
        except BindcoreError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
        click.echo(f"done in {time.perf_counter() - started:.0f}s: {out}", file=sys.stdout)
