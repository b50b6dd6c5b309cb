"""``bindcore export RUN --merge OUT``: a run's modalities as plain modality directories, LoRA adapters merged."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    @cli.command("export")
    @click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
    @click.option("--merge", "out", required=True, type=click.Path(file_okay=False),
                  help="Write OUT/<name> for every modality of RUN_DIR/modalities, adapters merged into the weights.")
    @click.option("--overwrite", is_flag=True, help="Replace an existing OUT (only once the new one is complete).")
    def export_command(run_dir: str, out: str, overwrite: bool) -> None:
        """Export the modalities of a finished run (RUN_DIR/modalities/<name>) as plain modality directories.

        A modality trained with train.lora is saved as base weights plus adapter.safetensors; the export folds the
        adapters into the weights, so OUT/<name> loads and embeds like any modality (bindcore.load_modality,
        --model OUT) without them. Modalities without adapters are copied. Licences are kept.
        """
        from bindcore.errors import BindcoreError
        from bindcore.train.finetune import export_merged

        try:
            written = export_merged(run_dir, out, overwrite=overwrite, log=lambda m: click.echo(m, err=True))
        except BindcoreError as error:
            raise click.ClickException(str(error)) from None
        for name, path in sorted(written.items()):
            click.echo(f"{name}\t{path}")
