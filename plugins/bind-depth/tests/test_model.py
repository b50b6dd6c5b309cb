"""The depth encoder: registry, ImageBind defaults, embeddings, save/load, ImageBind key loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bind_depth import DepthConfig, DepthModality

import bindcore
from bindcore import ConfigError
from bindcore.io import load_modality
from bindcore.toyworld import generate_scenes


def test_registered_through_the_entry_point(tiny_options):
    assert "depth" in bindcore.list_modalities()
    assert isinstance(bindcore.modality("depth", **tiny_options), DepthModality)


def test_defaults_are_imagebinds_depth_encoder():
    c = DepthConfig()
    assert (c.image_size, c.patch_size, c.width, c.num_layers, c.num_heads, c.embed_dim) == (224, 16, 384, 12, 8, 1024)
    assert (c.representation, c.infill, c.normalization) == ("disparity", "nearest", "omnivore")


def test_embed_is_unit_norm_and_deterministic(tiny_model):
    raw = [tiny_model.render_toy(s) for s in generate_scenes(4, seed=0)]
    z = tiny_model.embed(raw)
    assert z.shape == (4, 16)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(4))
    assert torch.equal(z, tiny_model.embed(raw))
    assert not torch.allclose(z[0], z[1])


def test_save_and_load_round_trip(tiny_options, tmp_path):
    m = DepthModality(**tiny_options, focal_length=600.0)
    path = m.save(tmp_path / "depth")
    loaded = load_modality(path)
    assert loaded.config == m.config
    raw = [m.render_toy(s) for s in generate_scenes(2, seed=2)]
    torch.testing.assert_close(loaded.embed(raw), m.embed(raw))


def test_imagebind_weights_load_under_the_depth_stem_keys(tiny_options):
    """Shape inference and error reporting are bindcore.patch_modality's (tested in the core); here: this
    plugin's ImageBind key names and a faithful reload."""
    m = DepthModality(**tiny_options)
    state = {key: m.state_dict()[name] for name, key in m.imagebind_key_map(m.config.num_layers).items()}
    assert "modality_preprocessors.depth.depth_stem.proj.weight" in state
    loaded = DepthModality.from_imagebind(state, num_heads=2, representation="depth", normalization="none")
    for key in ("image_size", "patch_size", "width", "num_layers", "embed_dim"):
        assert getattr(loaded.config, key) == getattr(m.config, key)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32))
    torch.testing.assert_close(loaded.eval()(x), m.eval()(x))
    with pytest.raises(ConfigError, match="depth_stem"):
        DepthModality.from_imagebind({}, num_heads=2)
