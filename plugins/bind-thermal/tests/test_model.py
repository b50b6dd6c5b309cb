"""The thermal encoder: registry, ImageBind defaults, embeddings, save/load, ImageBind key loading."""

from __future__ import annotations

import re

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


def test_encode_rejects_wrong_shapes(tiny_model):
    with pytest.raises(ValueError, match="preprocess"):
        tiny_model.encode(torch.zeros(2, 3, 32, 32))


def test_gradients_reach_every_parameter(tiny_model):
    tiny_model.train()
    x = tiny_model.preprocess([tiny_model.render_toy(s) for s in generate_scenes(3, seed=1)])
    tiny_model(x).sum().backward()
    missing = [n for n, p in tiny_model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_save_and_load_round_trip(tiny_options, tmp_path):
    m = ThermalModality(**tiny_options, scaling="minmax")
    path = m.save(tmp_path / "thermal")
    loaded = load_modality(path)
    assert loaded.config == m.config
    raw = [m.render_toy(s) for s in generate_scenes(2, seed=2)]
    torch.testing.assert_close(loaded.embed(raw), m.embed(raw))


def _as_imagebind(m: ThermalModality) -> dict[str, torch.Tensor]:
    ours = m.state_dict()
    return {key: ours[name].clone() for name, key in m.imagebind_key_map(m.config.num_layers).items()}


def test_from_imagebind_infers_sizes_and_reproduces_the_model(tiny_options):
    m = ThermalModality(**tiny_options)
    state = _as_imagebind(m)
    assert "modality_preprocessors.thermal.rgbt_stem.proj.weight" in state
    state["modality_trunks.vision.blocks.0.norm_1.weight"] = torch.ones(3)  # other modalities are ignored
    loaded = ThermalModality.from_imagebind(state, num_heads=2)
    for key in ("image_size", "patch_size", "width", "num_layers", "embed_dim"):
        assert getattr(loaded.config, key) == getattr(m.config, key)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32))
    torch.testing.assert_close(loaded.eval()(x), m.eval()(x))


def test_from_imagebind_reports_problems(tiny_options):
    m = ThermalModality(**tiny_options)
    state = _as_imagebind(m)
    with pytest.raises(ConfigError, match="width=64 conflicts"):
        ThermalModality.from_imagebind(state, num_heads=2, width=64)
    broken = dict(state)
    del broken["modality_trunks.thermal.blocks.0.attn.bias_k"]
    with pytest.raises(ConfigError, match=re.escape("missing modality_trunks.thermal.blocks.0.attn.bias_k")):
        ThermalModality.from_imagebind(broken, num_heads=2)
    extra = {**state, "modality_heads.thermal.9.weight": torch.zeros(1)}
    with pytest.raises(ConfigError, match=re.escape("unexpected modality_heads.thermal.9.weight")):
        ThermalModality.from_imagebind(extra, num_heads=2)
    with pytest.raises(ConfigError, match="rgbt_stem"):
        ThermalModality.from_imagebind({}, num_heads=2)
