"""``bindcore embed``: raw files (or texts) of one modality → an embedding file plus a JSONL row index."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click

DTYPES = ("float32", "float16", "bfloat16", "float64")


def parse_options(values: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; values are parsed as JSON when possible (numbers, booleans, lists), else strings."""
    import json

    options: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--option")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


def read_items(items: tuple[str, ...], files_from: str | None) -> list[str]:
    collected = list(items)
    if files_from:
        text = click.open_file(files_from, encoding="utf-8").read()
        collected += [line.rstrip("\n") for line in text.splitlines() if line.strip()]
    return collected


def build_model(modalities: list[str], model_dir: str | None, options: dict[str, dict[str, Any]],
                device: str, dtype: str, batch_size: int, compile: bool = False) -> Any:
    import torch

    from bindcore.inference import BindModel

    if model_dir is None:
        click.echo(f"warning: no --model given; {', '.join(modalities)} use freshly initialised (untrained) "
                   f"weights from the plugin defaults", err=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        model = BindModel.for_modalities(modalities, model_dir, options, batch_size=batch_size, compile=compile)
    for warning in caught:  # e.g. the non-commercial licence of converted ImageBind weights, shown plainly
        click.echo(f"warning: {warning.message}", err=True)
    return model.to(device=torch.device(device), dtype=getattr(torch, dtype))


def register(cli: click.Group) -> None:
    @cli.command("embed")
    @click.argument("items", nargs=-1)
    @click.option("--modality", "-m", required=True, help="Modality of the inputs (e.g. audio, vision, text).")
    @click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
                  help="Embedding file to write: .npy or .safetensors.")
    @click.option("--index", "index_path", type=click.Path(dir_okay=False),
                  help="JSONL row index to write (default: OUT with suffix .jsonl).")
    @click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
                  help="Saved weights: a directory from `bindcore convert`/training, or one saved modality.")
    @click.option("--files-from", type=click.Path(dir_okay=False, allow_dash=True),
                  help="Read more items (paths, or texts for --modality text) one per line; '-' for stdin.")
    @click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
                  help="Override a modality config value (repeatable).")
    @click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
    @click.option("--device", default="cpu", show_default=True)
    @click.option("--dtype", type=click.Choice(DTYPES), default="float32", show_default=True)
    @click.option("--on-error", type=click.Choice(["fail", "skip"]), default="fail", show_default=True,
                  help="skip: leave bad items out and list them in the index (row null) instead of stopping.")
    @click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
    @click.option("--compile", "compile_model", is_flag=True,
                  help="torch.compile the encoder: seconds of compiling, then faster batches (for many items).")
    def embed_command(items: tuple[str, ...], modality: str, out: str, index_path: str | None,
                      model_dir: str | None, files_from: str | None, options: tuple[str, ...], batch_size: int,
                      device: str, dtype: str, on_error: str, progress: bool | None, compile_model: bool) -> None:
        """Embed ITEMS (file paths; texts for --modality text) into OUT, one row per embedded item.

        The index has one JSON line per input, in input order: {"input", "row", "status", "error"}; skipped
        inputs have row null, so rows are never misaligned.
        """
        from bindcore.errors import BindcoreError
        from bindcore.inference import save_embeddings

        inputs = read_items(items, files_from)
        if not inputs:
            raise click.UsageError("no items to embed: pass them as arguments or with --files-from")
        if Path(out).suffix not in (".npy", ".safetensors"):
            raise click.BadParameter("must end in .npy or .safetensors", param_hint="--out")
        try:
            model = build_model([modality], model_dir, {modality: parse_options(options)}, device, dtype, batch_size,
                                compile=compile_model)
            result = model.embed_items(modality, inputs, on_error=on_error, progress=progress)  # type: ignore[arg-type]
        except BindcoreError as error:
            raise click.ClickException(str(error)) from None
        records = [
            {"input": item, "row": row, "status": "ok" if row is not None else "skipped",
             **({"error": result.errors[i]} if i in result.errors else {})}
            for i, (item, row) in enumerate(zip(inputs, result.rows, strict=True))
        ]
        emb_path, idx_path = save_embeddings(out, result.embeddings, records, modality=modality,
                                             index_path=index_path)
        done = result.embeddings.shape[0]
        click.echo(f"embedded {done} of {len(inputs)} {modality} item(s) → {emb_path} (index: {idx_path})", err=True)
        for i in result.skipped:
            click.echo(f"skipped {inputs[i]}: {result.errors[i]}", err=True)
        if done == 0:
            raise click.ClickException("every item failed; see the index for the reasons")
