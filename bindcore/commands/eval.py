"""``bindcore eval RUN_DIR``: zero-shot, retrieval and arithmetic metrics of a trained run."""

from __future__ import annotations

from pathlib import Path

import click


def register(cli: click.Group) -> None:
    @cli.command("eval")
    @click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Where to write eval.json and eval.png (default: RUN_DIR).")
    def eval_command(run_dir: Path, out: Path | None) -> None:
        """Evaluate RUN_DIR (written by `bindcore train`): emergent zero-shot, retrieval R@1/R@5, arithmetic."""
        from bindcore.errors import BindcoreError
        from bindcore.eval.run import evaluate_run_dir

        try:
            evaluate_run_dir(run_dir, out=out, log=click.echo)
        except BindcoreError as exc:
            raise click.ClickException(str(exc)) from None
