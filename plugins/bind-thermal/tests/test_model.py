"""The thermal encoder: registry, ImageBind defaults, embeddings, save/load, ImageBind key loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bind_thermal import ThermalConfig, ThermalModality

import bindcore
from bindcore import ConfigError
from bindcore.io import load_modality
from bindcore.toyworld import generate_scenes


def test_registered_through_the_entry_point(tiny_options):
    assert "thermal" in bindcore.list_modalities()
    assert isinstance(bindcore.modality("thermal", **tiny_options), ThermalModality)


def test_defaults_are_imagebinds_thermal_encoder():
    c = ThermalConfig()
    assert (c.image_size, c.patch_size, c.width, c.num_layers, c.num_heads, c.embed_dim) == (224, 16, 768, 12, 12, 1024)
    assert (c.scaling, c.normalization) == ("dtype", "none")


def test_embed_is_unit_norm_and_deterministic(tiny_model):
    raw = [tiny_model.render_toy(s) for s in generate_scenes(4, seed=0)]
    z = tiny_model.embed(raw)
    assert z.shape == (4, 16)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(4))
    assert torch.equal(z, tiny_model.embed(raw))
    assert not torch.allclose(z[0], z[1])


def test_save_and_load_round_trip(tiny_options, tmp_path):
    m = ThermalModality(**tiny_options, scaling="minmax")
    path = m.save(tmp_path / "thermal")
    loaded = load_modality(path)
    assert loaded.config == m.config
    raw = [m.render_toy(s) for s in generate_scenes(2, seed=2)]
    torch.testing.assert_close(loaded.embed(raw), m.embed(raw))


def test_imagebind_weights_load_under_the_rgbt_stem_keys(tiny_options):
    """Shape inference and error reporting are bindcore.patch_modality's (tested in the core); here: this
    plugin's ImageBind key names and a faithful reload."""
    m = ThermalModality(**tiny_options)
    state = {key: m.state_dict()[name] for name, key in m.imagebind_key_map(m.config.num_layers).items()}
    assert "modality_preprocessors.thermal.rgbt_stem.proj.weight" in state
    loaded = ThermalModality.from_imagebind(state, num_heads=2)
    for key in ("image_size", "patch_size", "width", "num_layers", "embed_dim"):
        assert getattr(loaded.config, key) == getattr(m.config, key)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32))
    torch.testing.assert_close(loaded.eval()(x), m.eval()(x))
    with pytest.raises(ConfigError, match="rgbt_stem"):
        ThermalModality.from_imagebind({}, num_heads=2)
