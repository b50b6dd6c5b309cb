"""The vision modality on the anchor's image tower: embeddings, frozenness, config, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bind_vision import VisionModality

import bindcore
from bindcore.anchor import load_anchor, tiny_anchor_config
from bindcore.errors import ConfigError


def _images(count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (40 + 3 * i, 36, 3), dtype=np.uint8) for i in range(count)]


def test_embed_goes_through_the_anchor_image_tower(vision_32) -> None:
    z = vision_32.embed(_images())
    assert z.shape == (3, 16) and vision_32.embed_dim == 16
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(3))
    x = vision_32.preprocess(_images())
    h = vision_32.encode(x)
    assert h.shape == (3, 32)  # pooled trunk features, before the projection
    torch.testing.assert_close(vision_32.project(h), vision_32.anchor.encode_image(x), rtol=0, atol=1e-6)


def test_frozen_and_stateless(vision_32) -> None:
    assert VisionModality.trainable is False
    assert list(vision_32.parameters()) == [] and vision_32.state_dict() == {}
    vision_32.train()
    assert not vision_32.anchor.training
    x = vision_32.preprocess(_images(2))
    assert not vision_32.project(vision_32.encode(x)).requires_grad


def test_modalities_with_one_anchor_config_share_the_model() -> None:
    arch = tiny_anchor_config(embed_dim=16, image_size=32, patch_size=8, width=32, layers=1, heads=2)
    a, b = VisionModality(anchor={"arch": arch}), VisionModality(anchor={"arch": arch}, toy_image_size=16)
    assert a.anchor is b.anchor is load_anchor(arch=arch)


def test_save_and_load_rebuild_the_same_embeddings(vision_32, tmp_path) -> None:
    path = vision_32.save(tmp_path / "vision")
    loaded = bindcore.load_modality(path)
    assert isinstance(loaded, VisionModality) and loaded.config == vision_32.config
    images = _images()
    assert torch.equal(loaded.embed(images), vision_32.embed(images))


def test_dtype_moves_follow_the_anchor() -> None:
    arch = tiny_anchor_config(embed_dim=8, image_size=16, patch_size=8, width=16, layers=1, heads=2)
    vision = VisionModality(anchor={"arch": arch, "seed": 4})
    vision.to(torch.float64)
    assert vision.anchor.dtype == torch.float64 and vision.input_device_dtype()[1] == torch.float64
    assert vision.embed(_images(1)).dtype == torch.float64


def test_config_errors() -> None:
    arch = tiny_anchor_config(embed_dim=8, image_size=16, patch_size=8, width=16, layers=1, heads=2)
    with pytest.raises(ConfigError, match="image tower takes 16x16"):
        VisionModality(anchor={"arch": arch}, image_size=224)
    with pytest.raises(ConfigError, match="valid keys"):
        VisionModality(anchor={"arch": arch}, image_szie=16)
    with pytest.raises(ConfigError, match="std"):
        VisionModality(anchor={"arch": arch}, std=(0.2, 0.0, 0.2))
    assert VisionModality.Config().image_size is None  # follows the anchor: 224 for ViT-H-14
    assert VisionModality.Config().mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))


def test_registered_through_the_entry_point() -> None:
    assert "vision" in bindcore.list_modalities()
    assert bindcore.modality_class("vision") is VisionModality
