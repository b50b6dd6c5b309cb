"""``bindcore cache-anchor RECIPE``: precompute the frozen anchor's image embeddings of every training set."""

from __future__ import annotations

from pathlib import Path

import click


def register(cli: click.Group) -> None:
    @cli.command("cache-anchor")
    @click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Run directory (the cache goes to anchor.cache_embeddings_dir or OUT/anchor_cache).")
    def cache_anchor_command(recipe: Path, out: Path | None) -> None:
        """Compute the anchor's image embeddings once into memory-mapped files (stale caches are rebuilt).

        Training uses them when the recipe sets anchor.cache_embeddings: true (same --out, or
        anchor.cache_embeddings_dir).
        """
        from bindcore.errors import BindcoreError
        from bindcore.recipe import load_recipe
        from bindcore.run_setup import RunSetup
        from bindcore.train.views_cache import cache_anchor

        try:
            validated = load_recipe(recipe)
            setup = RunSetup(validated, out or Path("runs") / validated.name, log=click.echo)
            caches = cache_anchor(setup, log=click.echo)
        except BindcoreError as exc:
            raise click.ClickException(str(exc)) from None
        for name, cache in caches.items():
            click.echo(f"{name}: {cache.path} ({' × '.join(map(str, cache.shape))})")
        if not validated.anchor.cache_embeddings:
            cropped = sorted(name for name, block in validated.modalities.items()
                             if block.train.augmentation.image_crop is not None)
            if cropped:
                click.echo("note: training will not read these caches: image_crop augments the images of "
                           f"{', '.join(cropped)}, and the caches hold un-augmented images; set "
                           "anchor.cache_embeddings: {views: K} (K cached crops per image) to train with cached "
                           "crops, or remove image_crop and set anchor.cache_embeddings: true")
            else:
                click.echo("note: set anchor.cache_embeddings: true in the recipe so training reads these caches")
