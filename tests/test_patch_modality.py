"""bindcore.patch_modality: config validation, shapes, gradients, ImageBind key mapping and loading.

Everything here is shared by every PatchModality plugin (bind-depth, bind-thermal); their own tests keep what
is theirs (defaults, stem key name, preprocessing, toy renderer, parity).
"""

from __future__ import annotations

import re
from typing import ClassVar

import pytest
import torch

from bindcore import ConfigError
from bindcore.patch_modality import PatchModality, PatchModalityConfig

TINY = {"image_size": 16, "patch_size": 8, "width": 16, "num_layers": 2, "num_heads": 2, "embed_dim": 8}


class Sonar(PatchModality):
    name: ClassVar[str] = "sonar"
    imagebind_stem: ClassVar[str] = "sonar_stem"


def test_config_validation():
    with pytest.raises(ConfigError, match="divisible"):
        Sonar(**{**TINY, "num_heads": 3})
    with pytest.raises(ConfigError, match="smaller than patch_size"):
        Sonar(**{**TINY, "image_size": 4})
    assert PatchModalityConfig().width == 768


def test_shapes_and_unit_norm():
    m = Sonar(**TINY).eval()
    assert m.input_shape == (1, 16, 16) and m.embed_dim == 8
    z = m(torch.randn(3, 1, 16, 16))
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(3))
    with pytest.raises(ValueError, match="expected a"):
        m.encode(torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match="preprocess"):
        m.encode(torch.zeros(2, 3, 16, 16))  # wrong channel count


def test_gradients_reach_every_parameter():
    m = Sonar(**TINY).train()
    m(torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_imagebind_round_trip():
    m = Sonar(**TINY).eval()
    mapping = m.imagebind_key_map(2)
    assert mapping["encoder.proj.weight"] == "modality_preprocessors.sonar.sonar_stem.proj.weight"
    assert mapping["head.proj.weight"] == "modality_heads.sonar.2.weight"
    assert set(mapping) == set(m.state_dict())
    state = {key: m.state_dict()[name] for name, key in mapping.items()}
    state["modality_trunks.vision.blocks.0.norm_1.weight"] = torch.ones(3)  # other modalities are ignored
    loaded = Sonar.from_imagebind(state, num_heads=2).eval()
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(loaded(x), m(x))
    assert Sonar.imagebind_shapes(state) == {k: TINY[k] for k in
                                            ("image_size", "patch_size", "width", "num_layers", "embed_dim")}


def test_imagebind_shape_errors():
    m = Sonar(**TINY)
    state = {key: m.state_dict()[name] for name, key in m.imagebind_key_map(2).items()}
    state["modality_preprocessors.sonar.pos_embedding_helper.pos_embed"] = torch.zeros(1, 6, 16)
    with pytest.raises(ConfigError, match="square grid"):
        Sonar.from_imagebind(state, num_heads=2)


def test_from_imagebind_reports_problems():
    m = Sonar(**TINY)
    state = {key: m.state_dict()[name] for name, key in m.imagebind_key_map(2).items()}
    with pytest.raises(ConfigError, match="width=64 conflicts"):
        Sonar.from_imagebind(state, num_heads=2, width=64)
    broken = dict(state)
    del broken["modality_trunks.sonar.blocks.0.attn.bias_k"]
    with pytest.raises(ConfigError, match=re.escape("missing modality_trunks.sonar.blocks.0.attn.bias_k")):
        Sonar.from_imagebind(broken, num_heads=2)
    extra = {**state, "modality_heads.sonar.9.weight": torch.zeros(1)}
    with pytest.raises(ConfigError, match=re.escape("unexpected modality_heads.sonar.9.weight")):
        Sonar.from_imagebind(extra, num_heads=2)
    with pytest.raises(ConfigError, match="sonar_stem"):
        Sonar.from_imagebind({}, num_heads=2)
