"""``bindcore convert imagebind SRC.pth OUT/``: Meta's ImageBind weights → bindcore directories."""

from __future__ import annotations

import json

import click


def _parse_heads(values: tuple[str, ...]) -> dict[str, int]:
    heads: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not number.strip().isdigit():
            raise click.BadParameter(f"{value!r} is not MODALITY=N (e.g. vision=16)", param_hint="--heads")
        heads[name.strip()] = int(number)
    return heads


def register(cli: click.Group) -> None:
    @cli.group("convert")
    def convert_group() -> None:
        """Convert third-party checkpoints into bindcore modality directories."""

    @convert_group.command("imagebind")
    @click.argument("source", type=click.Path(exists=True, dir_okay=False))
    @click.argument("out", type=click.Path(file_okay=False))
    @click.option("--heads", "heads", multiple=True, metavar="MODALITY=N",
                  help="Attention heads of a modality (shapes cannot tell). Defaults: imagebind_huge's "
                       "(vision=16 text=16 audio=12 depth=8 thermal=12 imu=8). Repeatable.")
    @click.option("--modality", "modalities", multiple=True,
                  help="Convert only this modality (repeatable). Default: all, skipping ones without a plugin.")
    @click.option("--image-size", type=click.IntRange(min=1), default=None,
                  help="Input size of the converted image tower (a multiple of the patch size, e.g. 280); position "
                       "embeddings are resized bicubically as ImageBind does. Default: the checkpoint's (224).")
    @click.option("--overwrite", is_flag=True,
                  help="Replace a non-empty OUT (as a whole, and only once the new conversion is complete).")
    @click.option("--json", "as_json", is_flag=True, help="Print the conversion report as JSON.")
    def convert_imagebind_command(source: str, out: str, heads: tuple[str, ...], modalities: tuple[str, ...],
                                  image_size: int | None, overwrite: bool, as_json: bool) -> None:
        """Convert ImageBind's SOURCE checkpoint (e.g. imagebind_huge.pth) into OUT/<modality> directories.

        The checkpoint is read safely (no arbitrary unpickling) and memory-mapped. The vision and text towers
        become a standard open_clip model in OUT/anchor (load with open_clip.create_model("local-dir:OUT/anchor")).
        The weights keep their licence, CC-BY-NC 4.0: non-commercial use only.
        """
        from bindcore.convert import convert_imagebind
        from bindcore.errors import BindcoreError

        log = (lambda message: None) if as_json else (lambda message: click.echo(message, err=True))
        try:
            report = convert_imagebind(source, out, heads=_parse_heads(heads), modalities=modalities or None,
                                       overwrite=overwrite, image_size=image_size, log=log)
        except BindcoreError as error:
            raise click.ClickException(str(error)) from None
        if as_json:
            click.echo(json.dumps(report.as_dict(), indent=2))
        else:
            for name, path in sorted(report.written.items()):
                click.echo(f"{name}\t{path}")
            for name, reason in sorted(report.skipped.items()):
                click.echo(f"{name}\tskipped: {reason}")
            click.echo("note: ImageBind's weights are licensed CC-BY-NC 4.0 (non-commercial use only)", err=True)
