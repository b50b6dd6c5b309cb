"""The augmented anchor cache (``anchor.cache_embeddings: {views: K}``): what it stores, what steps draw from it,
and that the paper-shaped recipe (image_crop on) then trains without the anchor in the step."""

from __future__ import annotations

import json
from collections import Counter
from typing import ClassVar

import numpy as np
import pytest
import torch

from bindcore.anchor import load_anchor
from bindcore.data.batches import StepBatches, crop_resize
from bindcore.data.plan import ModalityPlan, StepPlan
from bindcore.data.sources import ToySource
from bindcore.errors import ConfigError, NonFiniteError
from bindcore.recipe import validate_recipe
from bindcore.recipe.schema import Augmentation, ImageCrop
from bindcore.testing.stubs import StubVision, tiny_recipe
from bindcore.train.views_cache import ViewsCache, build_views_cache, view_boxes

TINY_ANCHOR = {"embed_dim": 16, "image_size": 16, "width": 16, "heads": 4, "text_width": 16, "context_length": 8}


@pytest.fixture
def parts():
    vision = StubVision(image_size=16)
    return load_anchor(tiny=TINY_ANCHOR), ToySource(20, 0, {"image": vision}), vision


def test_views_cache_stores_k_crops_as_fp16_with_their_boxes(parts, tmp_path):
    anchor, source, vision = parts
    crop = ImageCrop(scale=(0.3, 0.9))
    cache = build_views_cache(anchor, source, vision, tmp_path, views=3, crop=crop, seed=5, batch_size=8)
    assert cache.shape == (20, 3, 16) and cache.embeddings.dtype == np.float16
    assert isinstance(cache.embeddings, np.memmap) and cache.all_boxes.shape == (20, 3, 4)
    images = vision.preprocess([source.load(i)["image"] for i in range(20)])
    for view in range(3):
        boxes = torch.from_numpy(np.array(cache.all_boxes[:, view]))
        expected = anchor.encode_image(crop_resize(images, boxes, vision.augment_axes))
        got = cache.rows(np.arange(20), torch.full((20,), view))
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, atol=2e-3, rtol=1e-3)  # fp16 storage
    # the boxes are those of the seeded sampler, independent of chunking
    torch.testing.assert_close(torch.from_numpy(np.array(cache.all_boxes)),
                               torch.from_numpy(view_boxes(20, 16, 16, crop, 3, seed=5)), atol=0, rtol=0)
    manifest = json.loads(cache.path.with_suffix(".json").read_text())
    assert manifest["key"]["views"] == 3 and manifest["key"]["seed"] == 5 and manifest["count"] == 20


def test_views_cache_is_reused_and_fingerprinted_by_views_crop_and_seed(parts, tmp_path):
    anchor, source, vision = parts
    crop = ImageCrop()
    first = build_views_cache(anchor, source, vision, tmp_path, views=2, crop=crop, seed=0)
    stamp = first.path.stat().st_mtime_ns
    assert build_views_cache(anchor, source, vision, tmp_path, views=2, crop=crop, seed=0).path.stat() \
        .st_mtime_ns == stamp
    others = {build_views_cache(anchor, source, vision, tmp_path, views=3, crop=crop, seed=0).path,
              build_views_cache(anchor, source, vision, tmp_path, views=2, crop=ImageCrop(scale=(0.5, 1)),
                                seed=0).path,
              build_views_cache(anchor, source, vision, tmp_path, views=2, crop=crop, seed=1).path}
    assert len(others) == 3 and first.path not in others
    with torch.no_grad():
        anchor.model.visual.proj.add_(1.0)
    assert build_views_cache(anchor, source, vision, tmp_path, views=2, crop=crop, seed=0).path != first.path


def test_a_failed_or_non_finite_build_leaves_no_files(parts, tmp_path, monkeypatch):
    anchor, source, vision = parts

    def nan_embeddings(images):
        return torch.full((len(images), 16), float("nan"))

    monkeypatch.setattr(anchor, "encode_image", nan_embeddings)
    with pytest.raises(NonFiniteError, match="non-finite embeddings for view 0 of items"):
        build_views_cache(anchor, source, vision, tmp_path / "cache", views=2, crop=ImageCrop(), seed=0)
    assert [p.name for p in (tmp_path / "cache").rglob("*")] == []


def test_view_boxes_stay_within_the_recipes_scale_and_ratio():
    crop = ImageCrop(scale=(0.2, 0.7), ratio=(0.6, 1.8))
    boxes = torch.from_numpy(view_boxes(300, 24, 40, crop, 4, seed=3))
    top, left, box_h, box_w = boxes.unbind(-1)
    area, pixel_ratio = box_h * box_w, (box_w * 40) / (box_h * 24)
    assert area.min() >= 0.2 - 1e-9 and area.max() <= 0.7 + 1e-9
    assert pixel_ratio.min() >= 0.6 - 1e-9 and pixel_ratio.max() <= 1.8 + 1e-9
    assert (top >= 0).all() and (left >= 0).all() and (top + box_h <= 1 + 1e-9).all() \
        and (left + box_w <= 1 + 1e-9).all()
    assert len({tuple(b) for b in boxes.reshape(-1, 4).tolist()}) == 1200  # every view of every item its own crop


class _Spatial:
    augment_axes: ClassVar[dict[str, int]] = {"height": -2, "width": -1}


class _FakeViews(ViewsCache):
    """A views cache in memory: embedding of (item, view) = [item, view, ...]; boxes distinct per view."""

    def __init__(self, items: int, views: int):
        self.views = views
        grid = np.stack(np.meshgrid(np.arange(items), np.arange(views), indexing="ij"), -1)
        self._grid = np.concatenate([grid, np.zeros((items, views, 2))], -1).astype(np.float16)
        self._grid_boxes = np.stack([np.full((items, views), 0.1), 0.05 * np.arange(views)[None].repeat(items, 0),
                                     np.full((items, views), 0.5), np.full((items, views), 0.6)], -1)

    @property
    def embeddings(self) -> np.ndarray:
        return self._grid

    @property
    def all_boxes(self) -> np.ndarray:
        return self._grid_boxes


def _view_batches(seed: int, items: int = 12, views: int = 4, epochs: int = 50):
    plan = StepPlan([ModalityPlan("m", items, 4, 1.0, epochs)], seed=seed)
    maps = torch.rand(items, 2, 6, 8, generator=torch.Generator().manual_seed(0))
    return StepBatches(plan, {}, {"m": _Spatial()}, image_preprocessor=None,
                       augmentations={"m": Augmentation(image_crop=ImageCrop())}, seed=seed,
                       stores={("m", "m"): _Materialized(maps)}, anchor_caches={"m": _FakeViews(items, views)}), maps


class _Materialized:
    def __init__(self, tensor):
        self.tensor = tensor

    def take(self, indices):
        return self.tensor[torch.as_tensor(indices, dtype=torch.long)]


def test_steps_draw_each_view_uniformly_and_deterministically_over_epochs():
    batches, maps = _view_batches(seed=0)
    draws, per_item = [], Counter()
    for step in range(len(batches)):
        batch = batches[step]
        assert "images" not in batch  # the anchor side comes from the cache
        items, views = batch["indices"], batch["views"]
        anchor = batch["anchor"]
        assert torch.equal(anchor[:, 0], items.float()) and torch.equal(anchor[:, 1], views.float())
        # the bound modality is cropped with the drawn view's stored box
        boxes = batches.anchor_caches["m"].boxes(items.numpy(), views)
        assert torch.equal(batch["crop_boxes"], boxes)
        torch.testing.assert_close(batch["inputs"], crop_resize(maps[items], boxes, _Spatial.augment_axes))
        draws += views.tolist()
        per_item.update(zip(items.tolist(), views.tolist(), strict=True))
    counts = np.bincount(draws, minlength=4)
    assert len(draws) == 600 and counts.min() > 0
    expected = len(draws) / 4
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < 16.3  # 3 degrees of freedom, p = 0.001
    assert len(per_item) == 12 * 4  # every item was shown with every one of its views
    again, _ = _view_batches(seed=0)
    assert all(torch.equal(batches[s]["views"], again[s]["views"]) for s in (0, 7, 120))
    other, _ = _view_batches(seed=1)
    assert any(not torch.equal(batches[s]["views"], other[s]["views"]) for s in range(5))


def test_plain_cache_with_image_crop_is_refused_and_views_accepted(stubs):
    raw = tiny_recipe()
    raw["modalities"]["toya"]["train"]["augmentation"] = {"image_crop": {}}
    raw["anchor"]["cache_embeddings"] = True
    with pytest.raises(ConfigError, match=r"modalities\.toya\.train\.augmentation\.image_crop: "
                                          r"anchor\.cache_embeddings is true.*\{views: K\}"):
        validate_recipe(raw)
    raw["anchor"]["cache_embeddings"] = {"views": 4}
    assert validate_recipe(raw).anchor.cache_views == 4
    raw["anchor"]["cache_embeddings"] = {"views": 0}
    with pytest.raises(ConfigError, match=r"anchor\.cache_embeddings"):
        validate_recipe(raw)
    raw["anchor"]["cache_embeddings"] = True
    raw["modalities"]["toya"]["train"]["augmentation"] = {}
    assert validate_recipe(raw).anchor.cache_views == 0  # true stays the plain cache


def test_image_crop_recipe_trains_from_the_views_cache_without_the_anchor(stubs, tmp_path, monkeypatch):
    from bindcore.run_setup import RunSetup
    from bindcore.train.trainer import Trainer

    raw = tiny_recipe()
    for block in raw["modalities"].values():  # the paper's recipe: every pair crops its anchor images
        block["train"]["augmentation"] = {"image_crop": {"scale": [0.3, 1.0]}}
    raw["anchor"]["cache_embeddings"] = {"views": 3}
    trainer = Trainer(RunSetup(validate_recipe(raw), tmp_path / "run", log=lambda _m: None))
    caches = trainer.batches.anchor_caches
    assert set(caches) == {"toya", "toyb"} and all(isinstance(c, ViewsCache) and c.views == 3
                                                   for c in caches.values())
    calls = []

    def no_anchor(*args, **kwargs):
        calls.append(1)
        raise AssertionError("the anchor ran inside a training step")

    monkeypatch.setattr(trainer.anchor, "encode_image", no_anchor)
    monkeypatch.setattr(type(trainer.anchor), "forward", no_anchor)
    result = trainer.fit()
    assert calls == [] and result.steps > 0
    assert all(np.isfinite(v) for v in result.final_losses.values())
    assert all(c.path.parent == tmp_path / "run" / "anchor_cache" and c.boxes_path.is_file() for c in caches.values())
