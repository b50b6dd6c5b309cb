"""Encoder and modality: stem ≡ Conv1d, shapes, window averaging, config validation, save/load, registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from bind_imu import ImuModality, ImuRecording
from bind_imu.encoder import ImuEncoder
from bind_imu.imagebind import load_imagebind

import bindcore
from bindcore import ConfigError
from bindcore.io import load_modality


def test_stem_equals_a_strided_conv1d() -> None:
    torch.manual_seed(0)
    encoder = ImuEncoder(in_chans=6, num_steps=64, patch_size=8, width=16, num_layers=0, num_heads=2)
    x = torch.randn(3, 6, 64)
    conv = F.conv1d(x, encoder.proj.weight.reshape(16, 6, 8), stride=8).transpose(1, 2)
    assert torch.allclose(encoder.proj(encoder.patchify(x)), conv, atol=1e-5)


def test_patch_vectors_are_channel_major() -> None:
    encoder = ImuEncoder(in_chans=6, num_steps=16, patch_size=8, width=8, num_layers=0, num_heads=1)
    x = torch.arange(6 * 16, dtype=torch.float32).reshape(1, 6, 16)
    patches = encoder.patchify(x)
    assert patches.shape == (1, 2, 48)
    assert patches[0, 1, :10].tolist() == [8, 9, 10, 11, 12, 13, 14, 15, 24, 25]  # ch0 t8..15, then ch1 t8..


def test_encode_project_shapes(tiny_model: ImuModality) -> None:
    tiny_model.eval()
    x = torch.randn(4, 2, 6, 200)
    h = tiny_model.encode(x)
    assert h.shape == (4, 2, 32)
    z = tiny_model.project(h)
    assert z.shape == (4, 16) and torch.allclose(z.norm(dim=-1), torch.ones(4), atol=1e-5)
    single = tiny_model.encode(x[:, :1])
    assert single.shape == (4, 1, 32) and torch.allclose(single, h[:, :1], atol=1e-5)


def test_a_batch_without_the_window_axis_is_rejected(tiny_model: ImuModality) -> None:
    with pytest.raises(ValueError, match=r"add the window axis"):
        tiny_model.encode(torch.randn(2, 6, 200))
    with pytest.raises(ValueError, match=r"add the window axis"):
        tiny_model.project(torch.randn(2, 32))
    with pytest.raises(ValueError, match=r"\(N, windows, 6, 200\)"):
        tiny_model.encode(torch.randn(6, 200))


def test_project_averages_the_window_embeddings(tiny_model: ImuModality) -> None:
    tiny_model.eval()
    h = torch.randn(3, 2, 32)
    expected = F.normalize(tiny_model.project(h[:, :1]) + tiny_model.project(h[:, 1:]), dim=-1)
    assert torch.allclose(tiny_model.project(h), expected, atol=1e-5)


def test_wrong_window_length_is_a_clear_error(tiny_model: ImuModality) -> None:
    with pytest.raises(ValueError, match=r"\(B, 6, 200\)"):
        tiny_model.encode(torch.randn(1, 1, 6, 208))


def test_embed_is_finite_unit_and_deterministic(tiny_model: ImuModality) -> None:
    rng = np.random.default_rng(0)
    items = [ImuRecording(rng.standard_normal((6, n)), 100.0) for n in (20, 150, 900)]
    z = tiny_model.embed(items)
    assert z.shape == (3, 16) and torch.isfinite(z).all()
    assert torch.allclose(z.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.equal(z, tiny_model.embed(items))
    assert tiny_model.training  # embed restores the mode


def test_reference_sizes_and_drop_path() -> None:
    model = ImuModality()
    assert model.embed_dim == 1024 and model.encoder.pos_embed.shape == (1, 251, 512)
    assert model.encoder.proj.weight.shape == (512, 48) and len(model.encoder.trunk.blocks) == 6
    assert model.encoder.trunk.blocks[-1].drop_path.drop_prob == pytest.approx(0.7)
    assert model.head.dropout.p == 0.5
    assert model.encoder.trunk.blocks[0].attn.bias_k is not None


@pytest.mark.parametrize(("options", "message"), [
    ({"window_steps": 201}, "multiple of patch_size"),
    ({"width": 30, "num_heads": 4}, "divisible by num_heads"),
    ({"channel_std": (1, 1, 1, 0, 1, 1)}, "positive"),
    ({"normalisation": "none"}, "did you mean normalization"),
    ({"pad_mode": "mirror"}, "pad_mode"),
])
def test_config_validation(tiny_options: dict[str, Any], options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ImuModality(**{**tiny_options, **options})


def test_registry_builds_the_modality(tiny_options: dict[str, Any]) -> None:
    assert "imu" in bindcore.list_modalities()
    model = bindcore.modality("imu", **tiny_options)
    assert isinstance(model, ImuModality) and model.config.width == 32


def test_save_and_load_roundtrip(tmp_path: Path, tiny_model: ImuModality) -> None:
    recording = ImuRecording(np.random.default_rng(1).standard_normal((6, 300)), 200.0)
    path = tiny_model.save(tmp_path / "imu")
    loaded = load_modality(path)
    assert loaded.config == tiny_model.config
    assert torch.equal(loaded.embed([recording]), tiny_model.embed([recording]))


def test_gradients_reach_every_parameter(tiny_options: dict[str, Any]) -> None:
    model = ImuModality(**{**tiny_options, "grad_checkpointing": True})
    model.train()
    model(torch.randn(2, 2, 6, 200)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def _imagebind_like(model: ImuModality) -> dict[str, torch.Tensor]:
    """The inverse renaming, to test loading without the shared vectors."""
    state = model.state_dict()
    out = {
        "modality_preprocessors.imu.cls_token": state["encoder.cls_token"],
        "modality_preprocessors.imu.pos_embed": state["encoder.pos_embed"],
        "modality_preprocessors.imu.imu_stem.proj.weight": state["encoder.proj.weight"],
        "modality_preprocessors.imu.imu_stem.norm_layer.weight": state["encoder.stem_norm.weight"],
        "modality_preprocessors.imu.imu_stem.norm_layer.bias": state["encoder.stem_norm.bias"],
        "modality_heads.imu.0.weight": state["head.norm.weight"],
        "modality_heads.imu.0.bias": state["head.norm.bias"],
        "modality_heads.imu.3.weight": state["head.proj.weight"],
        "modality_postprocessors.imu.1.log_logit_scale": torch.tensor(np.log(5.0)),
        "modality_trunks.audio.blocks.0.norm_1.weight": torch.ones(3),  # other modalities are ignored
    }
    for key, value in state.items():
        if key.startswith("encoder.trunk."):
            out["modality_trunks.imu." + key[len("encoder.trunk."):]] = value
    return out


def test_from_imagebind_infers_sizes_and_roundtrips(tiny_model: ImuModality) -> None:
    loaded = ImuModality.from_imagebind(_imagebind_like(tiny_model), num_heads=2, num_windows=2,
                                        default_sample_rate=200.0, window_seconds=1.0)
    assert loaded.config == tiny_model.config
    for key, value in tiny_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_from_imagebind_rejects_conflicts_and_gaps(tiny_model: ImuModality) -> None:
    weights = _imagebind_like(tiny_model)
    with pytest.raises(ConfigError, match="width=64 but the weights have 32"):
        load_imagebind(ImuModality, weights, num_heads=2, width=64)
    del weights["modality_heads.imu.3.weight"]
    with pytest.raises(ConfigError, match=r"head\.proj\.weight"):
        ImuModality.from_imagebind(weights, num_heads=2)
    with pytest.raises(ConfigError, match="unexpected ImageBind IMU key"):
        ImuModality.from_imagebind({**_imagebind_like(tiny_model), "modality_heads.imu.9.weight": torch.ones(1)})
