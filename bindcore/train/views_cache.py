"""The augmented anchor cache (``anchor.cache_embeddings: {views: K}``): K seeded RandomResizedCrop views of every
training image, embedded once by the frozen anchor, so a recipe with ``image_crop`` (the paper's) trains without
the anchor in the step.

Files, named by a digest of what produced them (anchor, data, image preprocessing, K, the crop settings, the seed):

* ``anchor-views-<digest>.npy``: ``(N, K, D)`` float16 embeddings, memory-mapped when read;
* ``anchor-views-<digest>.boxes.npy``: ``(N, K, 4)`` float64 crop boxes ``(top, left, height, width)`` as fractions
  of the image (:func:`bindcore.data.batches.sample_crop_boxes`, the sampler of the uncached path);
* ``anchor-views-<digest>.json``: the manifest; a cache whose manifest does not match is stale and is rebuilt.

View ``k`` of item ``i`` is row ``i`` of the boxes drawn for all N items from a generator seeded by (seed, k), so the
views do not depend on chunking or workers. Each step draws one view per item from its own seeded stream (seed,
step, rank) (:meth:`ViewsCache.draw`, called by :class:`~bindcore.data.batches.StepBatches`); ``aligned_crop``
crops the bound modality with that view's stored box.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bindcore.data.batches import ANCHOR_IMAGE_AXES, SourceChunks, _axis, crop_resize, sample_crop_boxes
from bindcore.data.plan import seed_of
from bindcore.data.sources import IMAGE_KEY, PairedSource
from bindcore.errors import NonFiniteError
from bindcore.io import atomic_file
from bindcore.train.cache import AnchorCache, build_anchor_cache, cache_key, cache_paths, is_fresh

FORMAT = "bindcore-anchor-views/1"


class ViewsCache:
    """Read-only view of a built augmented cache; opens its memory maps lazily (so it pickles cheaply to workers)."""

    def __init__(self, path: Path, views: int):
        self.path = Path(path)
        self.boxes_path = boxes_path_of(self.path)
        self.views = views
        self._embeddings = AnchorCache(self.path)  # each a lazily opened memory map
        self._boxes = AnchorCache(self.boxes_path)

    @property
    def embeddings(self) -> np.ndarray:
        return self._embeddings.array

    @property
    def shape(self) -> tuple[int, ...]:
        """``(N, K, D)``."""
        return tuple(self.embeddings.shape)

    @property
    def all_boxes(self) -> np.ndarray:
        """``(N, K, 4)`` crop boxes of every view."""
        return self._boxes.array

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def draw(self, count: int, generator: torch.Generator) -> Tensor:
        """One view number per item, uniform over the K views."""
        return torch.randint(self.views, (count,), generator=generator)

    def rows(self, indices: Any, views: Tensor) -> Tensor:
        """The float32 embeddings of view ``views[j]`` of item ``indices[j]``: ``(B, D)``."""
        rows = self.embeddings[np.asarray(indices), views.numpy()]
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))

    def boxes(self, indices: Any, views: Tensor) -> Tensor:
        """The crop boxes of those views: ``(B, 4)`` float64."""
        return torch.from_numpy(np.ascontiguousarray(self.all_boxes[np.asarray(indices), views.numpy()]))


def boxes_path_of(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".npy") + ".boxes.npy")


def views_key(anchor_fingerprint: str, data_fingerprint: str, image_config: dict[str, Any], *, views: int,
              crop: Any, seed: int) -> dict[str, Any]:
    return {**cache_key(anchor_fingerprint, data_fingerprint, image_config), "format": FORMAT, "views": views,
            "crop": crop.model_dump(mode="json"), "seed": seed}




def view_boxes(count: int, height: int, width: int, crop: Any, views: int, seed: int) -> np.ndarray:
    """``(count, views, 4)`` boxes: view ``k`` of every item from its own generator seeded by (seed, k)."""
    columns = [sample_crop_boxes(count, height, width, crop,
                                 torch.Generator().manual_seed(seed_of("anchor-cache-view", seed, k) % 2**63))
               for k in range(views)]
    return torch.stack(columns, dim=1).numpy()


def _temporary(path: Path) -> Path:
    # open_memmap takes a path, not a handle: a hidden name unique to this process and call, like atomic_file's.
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}.npy")


@torch.no_grad()
def build_views_cache(anchor: Any, source: PairedSource, image_preprocessor: Any, cache_dir: Path, *, views: int,
                      crop: Any, seed: int, workers: int = 0, batch_size: int = 64,
                      device: torch.device | str = "cpu", log: Callable[[str], None] = print) -> ViewsCache:
    """Embed K seeded crops of every image of ``source`` (unless a fresh cache exists) and return the cache."""
    image_config = image_preprocessor.config.model_dump(mode="json") if hasattr(image_preprocessor, "config") else {}
    key = views_key(anchor.fingerprint(), source.fingerprint(IMAGE_KEY), image_config, views=views, crop=crop,
                    seed=seed)
    path, manifest_path = cache_paths(Path(cache_dir), key, prefix="anchor-views")
    count = len(source)
    if boxes_path_of(path).is_file() and is_fresh(path, manifest_path, key, count):
        return ViewsCache(path, views)
    if manifest_path.is_file():
        log(f"anchor cache {path.name} is stale (anchor, data, preprocessing or views changed): recomputing")
    path.parent.mkdir(parents=True, exist_ok=True)
    image_axes = getattr(image_preprocessor, "augment_axes", None) or ANCHOR_IMAGE_AXES
    temporary, temporary_boxes = _temporary(path), _temporary(boxes_path_of(path))
    output, boxes, start = None, None, 0
    loader = torch.utils.data.DataLoader(SourceChunks(source, IMAGE_KEY, image_preprocessor, batch_size),
                                         batch_size=None, num_workers=workers, generator=torch.Generator())
    try:
        for images in loader:
            if boxes is None:
                height = images.shape[_axis(images, image_axes, "height")]
                width = images.shape[_axis(images, image_axes, "width")]
                boxes = view_boxes(count, height, width, crop, views, seed)
                np.save(temporary_boxes, boxes)
            stop = start + len(images)
            for view in range(views):
                cropped = crop_resize(images, torch.from_numpy(boxes[start:stop, view]), image_axes)
                embeddings = anchor.encode_image(cropped.to(device)).float().cpu().numpy()
                if not np.isfinite(embeddings).all():
                    bad = sorted({start + int(r) for r in np.nonzero(~np.isfinite(embeddings).all(1))[0]})
                    raise NonFiniteError(f"the anchor gave non-finite embeddings for view {view} of items {bad} "
                                         f"({source.describe(bad[0])}); check those images")
                if output is None:
                    output = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16,
                                                       shape=(count, views, embeddings.shape[1]))
                output[start:stop, view] = embeddings
            start = stop
        assert output is not None
        output.flush()
        del output
        os.replace(temporary_boxes, boxes_path_of(path))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        temporary_boxes.unlink(missing_ok=True)
        raise
    with atomic_file(manifest_path, "w") as handle:
        handle.write(json.dumps({"key": key, "count": count}, indent=2))
    return ViewsCache(path, views)


def build_run_cache(recipe: Any, name: str, anchor: Any, source: PairedSource, image_preprocessor: Any,
                    cache_dir: Path, *, device: torch.device | str, log: Callable[[str], None] = print
                    ) -> AnchorCache | ViewsCache:
    """The cache a run of ``recipe`` reads for modality ``name``: K crop views where the recipe sets
    ``cache_embeddings: {views: K}`` and the modality crops its anchor images, else the plain cache."""
    crop = recipe.modalities[name].train.augmentation.image_crop
    workers = recipe.data.workers
    if recipe.anchor.cache_views and crop is not None:
        return build_views_cache(anchor, source, image_preprocessor, cache_dir, views=recipe.anchor.cache_views,
                                 crop=crop, seed=recipe.run.seed, device=device, workers=workers, log=log)
    return build_anchor_cache(anchor, source, image_preprocessor, cache_dir, device=device, workers=workers, log=log)


def cache_anchor(setup: Any, *, log: Callable[[str], None] = print) -> dict[str, AnchorCache | ViewsCache]:
    """``bindcore cache-anchor``: the anchor's image embeddings (or K crop views of them) of every modality's training
    data, computed once (or found fresh) where a run of the same recipe and output directory will look for them.
    Trains nothing."""
    modules = setup.build_modalities()
    caches: dict[str, AnchorCache | ViewsCache] = {}
    for name in sorted(setup.recipe.modalities):
        source = setup.source(name, modules[name])
        caches[name] = build_run_cache(setup.recipe, name, setup.anchor, source, setup.vision,
                                       setup.anchor_cache_dir(), device=setup.ctx.device, log=log)
    return caches


__all__ = ["ViewsCache", "build_run_cache", "build_views_cache", "cache_anchor", "view_boxes"]
