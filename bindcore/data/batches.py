"""Turning the step plan into tensors, inside DataLoader workers.

``StepBatches[global_step]`` loads the planned items, preprocesses them with the plugins (pure functions),
applies seeded train-time augmentation and returns one batch for one (anchor, modality) pair. Items can
come from a :class:`Materialized` store (the toy world: rendered and preprocessed once) and the anchor's
image side from an :class:`~bindcore.train.cache.AnchorCache` (precomputed embeddings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from bindcore.data.plan import StepPlan, _seed_of
from bindcore.data.sources import IMAGE_KEY, PairedSource


class _Chunks(Dataset):
    def __init__(self, source: PairedSource, key: str, preprocessor: Any, chunk: int):
        self.source, self.key, self.preprocessor, self.chunk = source, key, preprocessor, chunk

    def __len__(self) -> int:
        return (len(self.source) + self.chunk - 1) // self.chunk

    def __getitem__(self, number: int) -> Tensor:
        start = number * self.chunk
        stop = min(len(self.source), start + self.chunk)
        raw = [self.source.load(i, (self.key,))[self.key] for i in range(start, stop)]
        return self.preprocessor.preprocess(raw)


def preprocess_all(source: PairedSource, key: str, preprocessor: Any, *, workers: int = 0,
                   chunk: int = 64) -> Tensor:
    """Every item's ``key`` input, preprocessed (in ``workers`` processes), as one ``(N, ...)`` tensor."""
    loader = DataLoader(_Chunks(source, key, preprocessor, chunk), batch_size=None, num_workers=workers,
                        generator=torch.Generator())  # own generator: leaves the global RNG untouched
    return torch.cat(list(loader))


class Materialized:
    """Preprocessed tensors of every item, kept in (shared) memory: for small datasets like the toy world."""

    def __init__(self, tensor: Tensor):
        self.tensor = tensor.share_memory_() if tensor.numel() else tensor

    def take(self, indices: np.ndarray) -> Tensor:
        return self.tensor[torch.as_tensor(indices, dtype=torch.long)]


def augment(x: Tensor, settings: Any, generator: torch.Generator) -> Tensor:
    """Seeded train-time augmentation of a preprocessed batch ``(B, ..., H, W)``; returns a new tensor."""
    if not x.is_floating_point():
        return x
    x = x.clone()
    batch, height, width = x.shape[0], x.shape[-2] if x.ndim >= 3 else 1, x.shape[-1]

    def uniform(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator)

    if settings.color_jitter > 0:
        view = (batch,) + (1,) * (x.ndim - 1)
        scale = 1 + (uniform(batch) * 2 - 1) * settings.color_jitter
        shift = (uniform(batch) * 2 - 1) * settings.color_jitter
        mean = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
        x = (x - mean) * scale.view(view) + mean + shift.view(view)
    if settings.freq_mask > 0 and x.ndim >= 3:
        for row in range(batch):
            width_f = int(uniform(1).item() * (settings.freq_mask + 1))
            start = int(uniform(1).item() * max(1, height - width_f))
            x[row, ..., start:start + width_f, :] = 0
    if settings.time_mask > 0:
        for row in range(batch):
            width_t = int(uniform(1).item() * (settings.time_mask + 1))
            start = int(uniform(1).item() * max(1, width - width_t))
            x[row, ..., start:start + width_t] = 0
    if settings.random_erase > 0 and x.ndim >= 3:
        for row in range(batch):
            if uniform(1).item() < settings.random_erase:
                eh = max(1, int(height * (0.1 + 0.3 * uniform(1).item())))
                ew = max(1, int(width * (0.1 + 0.3 * uniform(1).item())))
                top = int(uniform(1).item() * (height - eh + 1))
                left = int(uniform(1).item() * (width - ew + 1))
                x[row, ..., top:top + eh, left:left + ew] = 0
    if settings.gaussian_noise > 0:
        x = x + torch.randn(x.shape, generator=generator) * settings.gaussian_noise
    return x


class StepBatches(Dataset):
    """Item ``s`` = the batch of global step ``s`` for this rank (a pure function of seed and ``s``)."""

    def __init__(self, plan: StepPlan, sources: Mapping[str, PairedSource], preprocessors: Mapping[str, Any],
                 *, image_preprocessor: Any | None, augmentations: Mapping[str, Any], seed: int,
                 stores: Mapping[tuple[str, str], Materialized] | None = None,
                 anchor_caches: Mapping[str, Any] | None = None, rank: int = 0, world_size: int = 1):
        self.plan, self.sources, self.preprocessors = plan, sources, preprocessors
        self.image_preprocessor = image_preprocessor
        self.augmentations, self.seed = augmentations, seed
        self.stores = dict(stores or {})
        self.anchor_caches = dict(anchor_caches or {})
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return len(self.plan)

    def _inputs(self, name: str, key: str, indices: np.ndarray, preprocessor: Any) -> Tensor:
        store = self.stores.get((name, key))
        if store is not None:
            return store.take(indices)
        source = self.sources[name]
        return preprocessor.preprocess([source.load(int(i), (key,))[key] for i in indices])

    def __getitem__(self, global_step: int) -> dict[str, Any]:
        name, local_step, indices = self.plan.step(global_step)
        per_rank = len(indices) // self.world_size
        indices = indices[self.rank * per_rank:(self.rank + 1) * per_rank]
        inputs = self._inputs(name, name, indices, self.preprocessors[name])
        settings = self.augmentations.get(name)
        if settings is not None:
            generator = torch.Generator().manual_seed(_seed_of("augment", self.seed, global_step, self.rank) % 2**63)
            inputs = augment(inputs, settings, generator)
        batch: dict[str, Any] = {"step": global_step, "modality": name, "local_step": local_step,
                                 "indices": torch.as_tensor(indices), "inputs": inputs}
        cache = self.anchor_caches.get(name)
        if cache is not None:
            batch["anchor"] = cache.rows(indices)
        else:
            batch["images"] = self._inputs(name, IMAGE_KEY, indices, self.image_preprocessor)
        return batch
