"""Turning the step plan into tensors, inside DataLoader workers.

``StepBatches[global_step]`` loads the planned items, preprocesses them with the plugins (which may read the
files items name), applies seeded train-time augmentation and returns one batch for one (anchor, modality) pair.
Items can come from a :class:`Materialized` store (the toy world: rendered and preprocessed once) and the
anchor's image side from an :class:`~bindcore.train.cache.AnchorCache` (precomputed embeddings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from bindcore.data.plan import StepPlan, seed_of
from bindcore.data.randaugment import rand_augment
from bindcore.data.sources import IMAGE_KEY, PairedSource
from bindcore.errors import ConfigError, InputError, describe_item


class SourceChunks(Dataset):
    """Item ``n`` = the ``key`` inputs of source items ``n·chunk … (n+1)·chunk - 1``, preprocessed; every item loaded
    is released afterwards (extracted shard members are deleted), also when a load or the preprocessing fails."""

    def __init__(self, source: PairedSource, key: str, preprocessor: Any, chunk: int):
        self.source, self.key, self.preprocessor, self.chunk = source, key, preprocessor, chunk

    def __len__(self) -> int:
        return (len(self.source) + self.chunk - 1) // self.chunk

    def __getitem__(self, number: int) -> Tensor:
        start = number * self.chunk
        items: list[dict[str, Any]] = []
        try:
            for index in range(start, min(len(self.source), start + self.chunk)):
                items.append(self.source.load(index, (self.key,)))
            return self.preprocessor.preprocess([item[self.key] for item in items])
        finally:
            for item in items:
                self.source.release(item)


def preprocess_all(source: PairedSource, key: str, preprocessor: Any, *, workers: int = 0,
                   chunk: int = 64) -> Tensor:
    """Every item's ``key`` input, preprocessed (in ``workers`` processes), as one ``(N, ...)`` tensor."""
    loader = DataLoader(SourceChunks(source, key, preprocessor, chunk), batch_size=None, num_workers=workers,
                        generator=torch.Generator())  # own generator: leaves the global RNG untouched
    return torch.cat(list(loader))


class Materialized:
    """Preprocessed tensors of every item, kept in (shared) memory: for small datasets like the toy world."""

    def __init__(self, tensor: Tensor):
        self.tensor = tensor.share_memory_() if tensor.numel() else tensor

    def take(self, indices: np.ndarray) -> Tensor:
        return self.tensor[torch.as_tensor(indices, dtype=torch.long)]


#: Axes of the anchor's preprocessed images when the image plugin declares none: open_clip's ``encode_image``
#: takes ``(B, 3, H, W)``, a fixed contract of the anchor (not a guess from the tensor's rank).
ANCHOR_IMAGE_AXES: Mapping[str, int] = {"height": -2, "width": -1}


def _axis(x: Tensor, axes: Mapping[str, int], name: str) -> int:
    """The declared axis ``name`` as an index into one item ``x[row]`` (a negative index; never the batch axis)."""
    if name not in axes:
        raise ValueError(f"this modality declares no {name!r} axis (augment_axes: {dict(axes)})")
    axis = axes[name]
    if not -x.ndim < axis < 0:
        raise ValueError(f"augment_axes[{name!r}] = {axis} does not name a non-batch axis of a {x.ndim}-D batch "
                         f"{tuple(x.shape)} (use a negative index counted from the last axis)")
    return axis


def augment(x: Tensor, settings: Any, generator: torch.Generator, axes: Mapping[str, int],
            rand_augment_generator: torch.Generator | None = None) -> Tensor:
    """Seeded train-time augmentation of a preprocessed batch; returns a new tensor.

    Masks and erasing act only on the axes named in ``axes`` (the modality's ``augment_axes``): ``freq_mask``
    on "frequency", ``time_mask`` on "time", ``random_erase`` and ``rand_augment`` on "height" × "width". A setting
    whose axis is not declared raises ``ValueError`` (recipes are checked earlier, with the YAML path). Jitter and
    noise need no axis. RandAugment runs first (timm's order: crop, RandAugment, …, erasing last) and draws from
    ``rand_augment_generator`` (default: one seeded from ``generator``'s initial seed), so switching it on or off
    leaves every other setting's draws unchanged.
    """
    if not x.is_floating_point():
        return x
    x = x.clone()
    batch = x.shape[0]
    if getattr(settings, "rand_augment", None) is not None:
        h_axis, w_axis = _axis(x, axes, "height"), _axis(x, axes, "width")
        if rand_augment_generator is None:
            rand_augment_generator = torch.Generator().manual_seed(
                seed_of("rand-augment", generator.initial_seed()) % 2**63)
        x = rand_augment(x, settings.rand_augment, rand_augment_generator, h_axis, w_axis)

    def uniform() -> float:
        return float(torch.rand(1, generator=generator))

    if settings.color_jitter > 0:
        view = (batch,) + (1,) * (x.ndim - 1)
        scale = 1 + (torch.rand(batch, generator=generator) * 2 - 1) * settings.color_jitter
        shift = (torch.rand(batch, generator=generator) * 2 - 1) * settings.color_jitter
        mean = x.mean(dim=tuple(range(1, x.ndim)), keepdim=True)
        x = (x - mean) * scale.view(view) + mean + shift.view(view)
    for setting, axis_name in (("freq_mask", "frequency"), ("time_mask", "time")):
        max_width = getattr(settings, setting)
        if max_width > 0:
            axis = _axis(x, axes, axis_name)
            size = x.shape[axis]
            for row in range(batch):
                width = min(size, int(uniform() * (max_width + 1)))
                start = int(uniform() * (size - width + 1))
                x[row].narrow(axis, start, width).zero_()
    if settings.random_erase > 0:
        h_axis, w_axis = _axis(x, axes, "height"), _axis(x, axes, "width")
        height, width = x.shape[h_axis], x.shape[w_axis]
        for row in range(batch):
            if uniform() < settings.random_erase:
                eh = max(1, int(height * (0.1 + 0.3 * uniform())))
                ew = max(1, int(width * (0.1 + 0.3 * uniform())))
                top = int(uniform() * (height - eh + 1))
                left = int(uniform() * (width - ew + 1))
                x[row].narrow(h_axis, top, eh).narrow(w_axis, left, ew).zero_()
    if settings.gaussian_noise > 0:
        x = x + torch.randn(x.shape, generator=generator) * settings.gaussian_noise
    return x


def sample_crop_boxes(batch: int, height: int, width: int, crop: Any, generator: torch.Generator) -> Tensor:
    """RandomResizedCrop boxes as fractions of the image: ``(batch, 4)`` rows ``(top, left, height, width)``.

    torchvision's sampler (10 tries of area fraction ~ U(scale), log aspect ~ U(log ratio), else a centre crop with
    the ratio clamped), but in continuous relative coordinates, so that the same box can crop a paired tensor of
    another resolution exactly (aligned crops).
    """
    low_log, high_log = math.log(crop.ratio[0]), math.log(crop.ratio[1])
    boxes = torch.empty(batch, 4, dtype=torch.float64)
    for row in range(batch):
        draws = torch.rand(10, 4, generator=generator, dtype=torch.float64)  # a fixed count: one row, one draw
        for area_u, ratio_u, top_u, left_u in draws.tolist():
            area = crop.scale[0] + area_u * (crop.scale[1] - crop.scale[0])
            ratio = math.exp(low_log + ratio_u * (high_log - low_log))  # width/height in pixels
            rel_w = math.sqrt(area * ratio * height / width)
            rel_h = math.sqrt(area * width / (ratio * height))
            if rel_w <= 1 and rel_h <= 1:
                boxes[row] = torch.tensor([top_u * (1 - rel_h), left_u * (1 - rel_w), rel_h, rel_w])
                break
        else:
            image_ratio = width / height
            if image_ratio < crop.ratio[0]:  # too tall: full width, clamp the height
                rel_h = min(1.0, width / crop.ratio[0] / height)
                boxes[row] = torch.tensor([(1 - rel_h) / 2, 0.0, rel_h, 1.0])
            elif image_ratio > crop.ratio[1]:  # too wide
                rel_w = min(1.0, height * crop.ratio[1] / width)
                boxes[row] = torch.tensor([0.0, (1 - rel_w) / 2, 1.0, rel_w])
            else:
                boxes[row] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    return boxes


def crop_resize(x: Tensor, boxes: Tensor, axes: Mapping[str, int]) -> Tensor:
    """Crop each row of ``x`` to its relative box ``(top, left, height, width)`` along the declared "height" and
    "width" axes and resize it back to the input size (bilinear; every other axis is carried along)."""
    h_axis, w_axis = _axis(x, axes, "height"), _axis(x, axes, "width")
    if not x.is_floating_point():
        raise ValueError(f"crop_resize needs a float tensor, got {x.dtype}")
    moved = x.movedim((h_axis, w_axis), (-2, -1))
    height, width = moved.shape[-2:]
    flat = moved.reshape(x.shape[0], -1, height, width)
    top, left, box_h, box_w = boxes.to(torch.float64).unbind(1)
    # affine_grid maps output coordinates in [-1, 1] (pixel edges, align_corners=False) into the box.
    theta = torch.zeros(x.shape[0], 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 2] = box_w, 2 * left - 1 + box_w
    theta[:, 1, 1], theta[:, 1, 2] = box_h, 2 * top - 1 + box_h
    grid = F.affine_grid(theta.to(flat.dtype), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(moved.shape).movedim((-2, -1), (h_axis, w_axis)).contiguous()


def aligned_crop_enabled(settings: Any, axes: Mapping[str, int]) -> bool:
    """``aligned_crop`` as set, else on for modalities that declare "height" and "width" (depth, thermal)."""
    if settings.image_crop is None:
        return False
    if settings.aligned_crop is None:
        return "height" in axes and "width" in axes
    return bool(settings.aligned_crop)


#: Seeded tries to find a good substitute for a skipped item before the run gives up.
SUBSTITUTE_TRIES = 64


class BadItem(Exception):
    """An item of a step's batch that cannot be used; ``record`` says which (it travels to the main process)."""

    def __init__(self, record: dict[str, Any]):
        super().__init__(record["reason"])
        self.record = record


def _reason(error: BaseException, raw: Any = None) -> str:
    """One line saying why a plugin failed; a plugin's :class:`InputError` about ``raw`` itself loses the repeat."""
    if isinstance(error, InputError):
        same = raw is not None and isinstance(error.item, str) and error.item == raw
        text = (f"{error.reason} ({error.fix})" if error.fix else error.reason) if same else str(error)
    else:
        text = f"{type(error).__name__}: {error}"
    text = text.strip()
    return text.splitlines()[0] if text else type(error).__name__


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else describe_item(value)


def raise_bad_item(batch: Mapping[str, Any]) -> None:
    """Raise the :class:`InputError` of a batch that holds a ``bad_item`` (in the process that iterates the loader:
    an exception raised in a DataLoader worker comes back as a RuntimeError wrapping its whole traceback)."""
    record = batch.get("bad_item")
    if not record:
        return
    name = record["modality"]
    raise InputError(record["item"], f"the {record['key']} input of {record['where']} (the image–{name} pair of "
                                     f"step {record['step']}) cannot be used: {record['reason']}",
                     fix=f"fix or remove it, or set modalities.{name}.data.on_error: skip to replace bad items "
                         f"by seeded substitutes (up to modalities.{name}.data.max_skipped of them)")


class StepBatches(Dataset):
    """Item ``s`` = the batch of global step ``s`` for this rank (a pure function of seed and ``s``).

    An item whose files cannot be loaded or preprocessed (``on_error[modality]``, default "fail") makes the batch a
    ``{"bad_item": record}`` (see :func:`raise_bad_item`); with "skip" it is replaced by a substitute drawn by a
    seeded rule from the item's index (the same on every run and rank, so batches keep their size and resumes
    replay them), and the batch lists it under ``"skipped"``.
    """

    def __init__(self, plan: StepPlan, sources: Mapping[str, PairedSource], preprocessors: Mapping[str, Any],
                 *, image_preprocessor: Any | None, augmentations: Mapping[str, Any], seed: int,
                 stores: Mapping[tuple[str, str], Materialized] | None = None,
                 anchor_caches: Mapping[str, Any] | None = None, rank: int = 0, world_size: int = 1,
                 on_error: Mapping[str, str] | None = None):
        self.plan, self.sources, self.preprocessors = plan, sources, preprocessors
        self.image_preprocessor = image_preprocessor
        self.augmentations, self.seed = augmentations, seed
        self.stores = dict(stores or {})
        self.anchor_caches = dict(anchor_caches or {})
        self.rank, self.world_size = rank, world_size
        self.on_error = dict(on_error or {})
        self._problems: dict[tuple[str, int], dict[str, Any] | None] = {}  # per process: items checked alone
        for name, settings in self.augmentations.items():
            cache = self.anchor_caches.get(name)
            if getattr(settings, "image_crop", None) is not None and cache is not None \
                    and not getattr(cache, "views", 0):
                raise ConfigError(f"modalities.{name}.train.augmentation.image_crop: the anchor's image embeddings "
                                  f"are cached (computed from un-augmented images); use anchor.cache_embeddings: "
                                  f"{{views: K}}, turn the cache off or remove image_crop")

    def __len__(self) -> int:
        return len(self.plan)

    def _preprocessor(self, name: str, key: str) -> Any:
        return self.preprocessors[name] if key == name else self.image_preprocessor

    def _from_source(self, name: str, key: str, indices: np.ndarray) -> Tensor:
        source = self.sources[name]
        items: list[dict[str, Any]] = []
        try:  # also when the k-th load raises: the k items loaded before it are released
            for index in indices:
                items.append(source.load(int(index), (key,)))
            return self._preprocessor(name, key).preprocess([item[key] for item in items])
        finally:
            for item in items:
                source.release(item)

    def _problem(self, name: str, keys: list[str], index: int) -> dict[str, Any] | None:
        """What is wrong with item ``index`` alone (key, raw input, reason), or None."""
        if (name, index) not in self._problems:
            source, problem = self.sources[name], None
            for key in keys:
                raw: Any = None
                try:
                    item = source.load(index, (key,))
                    raw = item[key]
                    try:
                        self._preprocessor(name, key).preprocess([raw])
                    finally:
                        source.release(item)
                except Exception as error:  # any failure of a plugin on one item: name the item
                    problem = {"key": key, "item": _shown(raw if raw is not None else f"item {index}"),
                               "reason": _reason(error, raw)}
                    break
            self._problems[(name, index)] = problem
        return self._problems[(name, index)]

    def _record(self, name: str, index: int, step: int, problem: dict[str, Any]) -> dict[str, Any]:
        return {"modality": name, "index": index, "where": self.sources[name].describe(index), "step": step,
                **problem}

    def _substitute(self, name: str, keys: list[str], index: int, taken: set[int], step: int) -> int:
        size = len(self.sources[name])
        for attempt in range(SUBSTITUTE_TRIES):
            candidate = seed_of("substitute", self.seed, name, index, attempt) % size
            if candidate not in taken and self._problem(name, keys, candidate) is None:
                return candidate
        raise BadItem(self._record(name, index, step, {
            "key": name, "item": f"item {index}",
            "reason": f"no usable substitute in {SUBSTITUTE_TRIES} seeded tries: most of the data is bad"}))

    def _read(self, name: str, keys: list[str], indices: np.ndarray, step: int,
              skipped: list[dict[str, Any]]) -> tuple[np.ndarray, dict[str, Tensor]]:
        """The preprocessed source inputs under ``keys`` of ``indices``, bad items replaced (or raised)."""
        try:
            return indices, {key: self._from_source(name, key, indices) for key in keys}
        except Exception as error:  # find the item(s) at fault, one by one
            failure = error
        indices = np.array(indices, copy=True)
        taken = {int(i) for i in indices}
        for position, index in enumerate(indices.tolist()):
            problem = self._problem(name, keys, index)
            if problem is None:
                continue
            if self.on_error.get(name, "fail") != "skip":
                raise BadItem(self._record(name, index, step, problem))
            substitute = self._substitute(name, keys, index, taken, step)
            taken.add(substitute)
            indices[position] = substitute
            skipped.append({**self._record(name, index, step, problem), "substitute": substitute})
        try:
            return indices, {key: self._from_source(name, key, indices) for key in keys}
        except Exception as error:  # each item alone is fine: the plugin cannot batch them together
            raise BadItem({"modality": name, "index": None, "key": keys[0], "step": step,
                           "where": f"the batch of step {step}", "item": "the whole batch",
                           "reason": f"every item preprocesses alone, the batch does not: {_reason(error)} "
                                     f"(first error: {_reason(failure)})"}) from None

    def __getitem__(self, global_step: int) -> dict[str, Any]:
        name, local_step, indices = self.plan.step(global_step)
        per_rank = len(indices) // self.world_size
        indices = indices[self.rank * per_rank:(self.rank + 1) * per_rank]
        preprocessor = self.preprocessors[name]
        batch: dict[str, Any] = {"step": global_step, "modality": name, "local_step": local_step, "skipped": []}
        cache = self.anchor_caches.get(name)
        keys = [key for key in (name, *(() if cache is not None else (IMAGE_KEY,)))
                if (name, key) not in self.stores]
        try:
            indices, read = self._read(name, keys, indices, global_step, batch["skipped"])
        except BadItem as bad:
            return {**batch, "bad_item": bad.record}
        inputs = read[name] if name in read else self.stores[(name, name)].take(indices)
        batch["indices"] = torch.as_tensor(indices)
        settings = self.augmentations.get(name)
        axes = getattr(preprocessor, "augment_axes", {})
        if cache is not None and getattr(cache, "views", 0):  # augmented cache: one stored crop view per item
            views = cache.draw(len(indices), torch.Generator().manual_seed(
                seed_of("anchor-view", self.seed, global_step, self.rank) % 2**63))
            batch["anchor"], boxes = cache.rows(indices, views), cache.boxes(indices, views)
            if settings is not None and aligned_crop_enabled(settings, axes):
                inputs = crop_resize(inputs, boxes, axes)
            batch["crop_boxes"], batch["views"] = boxes, views
        elif cache is not None:
            batch["anchor"] = cache.rows(indices)
        else:
            images = read[IMAGE_KEY] if IMAGE_KEY in read else self.stores[(name, IMAGE_KEY)].take(indices)
            if settings is not None and settings.image_crop is not None:
                # Its own stream: switching crops on or off leaves the other augmentations' draws unchanged.
                crop_rng = torch.Generator().manual_seed(seed_of("image-crop", self.seed, global_step,
                                                                  self.rank) % 2**63)
                image_axes = getattr(self.image_preprocessor, "augment_axes", None) or ANCHOR_IMAGE_AXES
                h_axis, w_axis = _axis(images, image_axes, "height"), _axis(images, image_axes, "width")
                boxes = sample_crop_boxes(len(images), images.shape[h_axis], images.shape[w_axis],
                                          settings.image_crop, crop_rng)
                images = crop_resize(images, boxes, image_axes)
                if aligned_crop_enabled(settings, axes):
                    inputs = crop_resize(inputs, boxes, axes)
                batch["crop_boxes"] = boxes
            batch["images"] = images
        if settings is not None:
            generator = torch.Generator().manual_seed(seed_of("augment", self.seed, global_step, self.rank) % 2**63)
            # RandAugment on the bound modality's map only (as the paper's depth/thermal side), after the aligned
            # crop; its geometric ops move the map against the image, by at most what the paper's recipe does.
            rand_generator = torch.Generator().manual_seed(
                seed_of("rand-augment", self.seed, global_step, self.rank) % 2**63)
            inputs = augment(inputs, settings, generator, axes, rand_generator)
        batch["inputs"] = inputs
        return batch
