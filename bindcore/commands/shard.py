"""``bindcore shard RECIPE --modality NAME --out DIR``: write a modality's training pairs into WebDataset shards
plus their index; ``--index-only`` counts the samples of the recipe's existing shards into an index instead."""

from __future__ import annotations

from pathlib import Path

import click


def register(cli: click.Group) -> None:
    @cli.command("shard")
    @click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--modality", required=True, help="The modality whose (image, modality) pairs are sharded.")
    @click.option("--out", type=click.Path(path_type=Path), default=None,
                  help="Folder of the shards and index.json (with --index-only: the index file; default: the "
                       "recipe's data.index, else index.json beside the shards).")
    @click.option("--preprocessed", is_flag=True,
                  help="Store the modality's preprocessed tensors (training then spends no CPU decoding them).")
    @click.option("--shard-size", default="1GB", show_default=True, help="Start a new shard past this size.")
    @click.option("--workers", type=int, default=0, show_default=True,
                  help="Processes reading (and preprocessing) items.")
    @click.option("--index-only", is_flag=True,
                  help="Stream the recipe's webdataset shards once and write their index (samples per shard).")
    @click.option("--progress/--no-progress", default=True)
    def shard_command(recipe: Path, modality: str, out: Path | None, preprocessed: bool, shard_size: str,
                      workers: int, index_only: bool, progress: bool) -> None:
        """Write a modality's pairs into WebDataset shards (resumable: finished shards are kept), or index shards.

        Point the recipe at them with data: {kind: webdataset, mode: stream, shards: DIR/NAME-{000000..N}.tar}.
        """
        from bindcore.data.shard import parse_size, write_shards
        from bindcore.errors import BindcoreError
        from bindcore.recipe import load_recipe

        try:
            validated = load_recipe(recipe, check_files=False)
            if modality not in validated.modalities:
                raise click.ClickException(f"{recipe} trains no modality {modality!r} (it trains "
                                           f"{', '.join(sorted(validated.modalities))})")
            block = validated.modalities[modality]
            if index_only:
                _index_only(validated, modality, out, progress)
                return
            if out is None:
                raise click.ClickException("--out DIR is needed: the folder the shards go to")
            source, module = _source(validated, modality)
            index = write_shards(source, modality, module, out, preprocessed=preprocessed,
                                 shard_size=parse_size(shard_size), workers=workers, progress=progress,
                                 log=click.echo)
        except BindcoreError as exc:
            raise click.ClickException(str(exc)) from None
        pattern = f"{out}/{modality}-{{000000..{len(index.items) - 1:06d}}}.tar"
        click.echo(f"train from them with modalities.{modality}.data: {{kind: webdataset, mode: stream, "
                   f"shards: \"{pattern}\"}} (was: kind {block.data.kind})")


def _index_only(validated, modality: str, out: Path | None, progress: bool) -> None:
    from bindcore.data.shard_index import ShardIndex, scan_shards
    from bindcore.data.stream import index_path, shard_urls
    from bindcore.errors import ConfigError

    data = validated.modalities[modality].data
    if data.kind != "webdataset":
        raise ConfigError(f"--index-only indexes webdataset shards; modalities.{modality}.data.kind is "
                          f"{data.kind!r} (write shards from it with --out DIR instead)")
    urls = shard_urls(data.shards or "", validated.source)
    target = out or index_path(data, validated.source)
    index = ShardIndex(scan_shards(urls, progress=progress), modality=modality,
                       fingerprint={"indexed_from": data.shards})
    index.save(target)
    click.echo(f"{target}: {index.total} samples in {len(index.items)} shard(s)")


def _source(validated, modality: str):
    """The modality's training source and a fresh module of it (its preprocessing; no weights are needed)."""
    import torch

    from bindcore.plugins import get_registry
    from bindcore.run_setup import Context, RunSetup

    setup = RunSetup(validated, Path("runs") / validated.name, prepare=False, log=click.echo,
                     context=Context(torch.device("cpu"), log=click.echo))
    if validated.modalities[modality].data.kind == "toy":
        # the toy world renders images with the vision plugin: built on the anchor's source config (preprocessing
        # needs no weights), so no anchor has to be prepared first
        setup.__dict__["vision"] = setup._anchor_side_plugin("vision", validated.anchor.image,
                                                             validated.anchor_source())
    module = get_registry().get(modality)(validated.modalities[modality].config)
    return setup.source(modality, module), module
