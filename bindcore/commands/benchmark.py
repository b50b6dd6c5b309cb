"""``bindcore benchmark NAME ROOT --model DIR``: a published benchmark (or the user's own labelled/paired
manifest) scored the paper's way, beside the paper's number; ``bindcore benchmark --list`` names them all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def parse_shots(value: str | None) -> list[int] | None:
    """``"1,2,4,8"`` → ``[1, 2, 4, 8]``."""
    if not value:
        return None
    try:
        shots = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers, e.g. 1,2,4,8",
                                 param_hint="--shots") from None
    if not shots or min(shots) < 1:
        raise click.BadParameter("shots must be positive integers, e.g. 1,2,4,8", param_hint="--shots")
    return shots


def read_templates(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    templates = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    bad = [t for t in templates if "{}" not in t]
    if not templates or bad:
        raise click.BadParameter(f"{path}: every line must be a prompt template with '{{}}' for the class name"
                                 + (f" (not {bad[0]!r})" if bad else " (the file is empty)"),
                                 param_hint="--templates")
    return templates


def benchmark_list() -> list[dict[str, Any]]:
    from bindcore.eval.benchmarks.registry import get_benchmarks

    registry = get_benchmarks()
    return [{"name": b.name, "modality": b.modality, "task": b.task, "metrics": list(b.metrics),
             "layout": b.layout, "paper": dict(b.paper), "paper_source": b.paper_source,
             "provided_by": registry.owners[b.name]} for b in (registry.get(n) for n in registry.names())]


def list_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        paper = ", ".join(f"{k} {100 * v:.1f}%" for k, v in row["paper"].items()) or "-"
        source = f" ({row['paper_source']})" if row["paper_source"] else ""
        lines += [f"{row['name']}  [{row['task']}, {row['modality']}, {'/'.join(row['metrics'])}; "
                  f"from {row['provided_by']}]",
                  f"    layout: {row['layout']}", f"    paper:  {paper}{source}"]
    return "\n".join(lines)


def register(cli: click.Group) -> None:
    @cli.command("benchmark")
    @click.argument("name", required=False)
    @click.argument("root", required=False, type=click.Path(exists=True, path_type=Path))
    @click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                  help="A `bindcore convert` output or a `bindcore train` run directory.")
    @click.option("--modality", default=None, help="The modality to measure (needed by labelled and pairs).")
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
                  help="Where NAME.json and NAME.png go.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
    @click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
    @click.option("--device", default="cpu", show_default=True)
    @click.option("--shots", default=None, metavar="K,K,...", help="Few-shot linear probe, e.g. 1,2,4,8.")
    @click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
                  help="Seeds of the few-shot probe (each draws its own k items per class).")
    @click.option("--templates", "templates_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Prompt templates, one per line with {} (default: CLIP's 80 ImageNet templates).")
    @click.option("-o", "--option", "options", type=(str, str), multiple=True, metavar="KEY VALUE",
                  help="A benchmark option (repeatable; --list says which benchmark takes which).")
    @click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
    @click.option("--list", "list_all", is_flag=True, help="List every benchmark and exit.")
    def benchmark_command(name: str | None, root: Path | None, model_dir: Path | None, modality: str | None,
                          out: Path, as_json: bool, batch_size: int, device: str, shots: str | None, seeds: int,
                          templates_file: Path | None, options: tuple[tuple[str, str], ...],
                          progress: bool | None, list_all: bool) -> None:
        """Score NAME on the dataset at ROOT (as its authors publish it; for labelled/pairs, the manifest) with
        the modalities of --model, beside the paper's number; writes OUT/NAME.json and OUT/NAME.png."""
        from bindcore.errors import BindcoreError

        if list_all:
            rows = benchmark_list()
            click.echo(json.dumps(rows, indent=2) if as_json else list_text(rows))
            return
        if name is None or root is None or model_dir is None:
            raise click.UsageError("give NAME, ROOT and --model DIR (or --list to see the benchmarks)")
        from bindcore.eval.benchmarks.report import format_result
        from bindcore.eval.benchmarks.run import run_benchmark

        log = (lambda message: click.echo(message, err=True)) if as_json else click.echo
        try:
            result = run_benchmark(name, root, model_dir, modality=modality, out=out, batch_size=batch_size,
                                   device=device, shots=parse_shots(shots), seeds=seeds, options=dict(options),
                                   templates=read_templates(templates_file), log=log, progress=progress)
        except BindcoreError as error:
            raise click.ClickException(str(error)) from None
        click.echo(json.dumps(result, indent=2) if as_json else format_result(result))
