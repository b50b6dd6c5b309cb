"""The audio modality: registration, encoder shapes and gradients, save/load, ImageBind conversion errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bind_audio import AudioArray, AudioConfig, AudioModality

import bindcore
from bindcore import ConfigError
from bindcore.io import load_modality


def test_registered_through_the_entry_point(tiny):
    assert "audio" in bindcore.list_modalities()
    module = bindcore.modality("audio", **tiny)
    assert isinstance(module, AudioModality) and module.embed_dim == 16


def test_default_config_is_imagebind_vit_b_audio():
    config = AudioConfig()
    assert (config.width, config.num_layers, config.num_heads, config.drop_path) == (768, 12, 12, 0.1)
    assert config.embed_dim == 1024
    assert (config.patch_size, config.patch_stride, config.input_size) == (16, 10, (128, 204))
    assert (config.window_samples, config.shift_samples, config.fft_size, config.clip_samples) == (400, 160, 512, 32000)


def test_legacy_depth_key_means_num_layers(tiny):
    with pytest.warns(FutureWarning, match="num_layers"):
        config = AudioConfig(**{key: value for key, value in tiny.items() if key != "num_layers"}, depth=3)
    assert config.num_layers == 3 and "depth" not in config.model_dump()
    with pytest.raises(ConfigError, match="num_layers only"):
        AudioModality(**{**tiny, "depth": 3})


def test_encode_project_shapes_and_unit_norm(tiny):
    module = AudioModality(**tiny).eval()
    x = torch.randn(3, 2, 1, 32, 100)
    features = module.encode(x)
    assert features.shape == (3, 2, 32)
    z = module.project(features)
    assert z.shape == (3, 16)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(3))
    clips = module.project_clips(features)
    assert clips.shape == (3, 2, 16)
    torch.testing.assert_close(z, torch.nn.functional.normalize(clips.mean(1), dim=-1))
    assert module.encode(x[:, :1]).shape == (3, 1, 32)  # one clip per item keeps its clip axis


def test_encode_and_project_require_the_clip_axis(tiny):
    module = AudioModality(**tiny).eval()
    x = torch.randn(3, 2, 1, 32, 100)
    with pytest.raises(ValueError, match=r"add the clip axis: x\.unsqueeze\(1\)"):
        module.encode(x[:, 0])  # (N, 1, F, T): no guessing that this is one clip
    for bad in (torch.randn(3, 2, 2, 32, 100), torch.randn(3, 2, 1, 100, 32), torch.randn(2, 3, 2, 1, 32, 100)):
        with pytest.raises(ValueError, match=r"\(N, clips, 1, 32, 100\)") as error:
            module.encode(bad)
        assert "unsqueeze" not in str(error.value)
    features = module.encode(x)
    with pytest.raises(ValueError, match="add the clip axis"):
        module.project(features[:, 0])
    with pytest.raises(ValueError, match=r"\(N, clips, 32\)"):
        module.project(features[..., :16])


def test_gradients_reach_every_parameter(tiny):
    module = AudioModality(**{**tiny, "num_layers": 2}).train()
    z = module(torch.randn(2, 2, 1, 32, 100))
    (z[:, 0] - z[:, 1]).pow(2).sum().backward()
    missing = [name for name, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_grad_checkpointing_gives_the_same_gradients(tiny):
    torch.manual_seed(0)
    plain = AudioModality(**tiny).train()
    checkpointed = AudioModality(**{**tiny, "grad_checkpointing": True}).train()
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(2, 2, 1, 32, 100)
    for module in (plain, checkpointed):
        module(x).sum().backward()
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_embed_from_raw_inputs_is_finite(tiny, tone):
    module = AudioModality(**tiny)
    z = module.embed([AudioArray(tone(1.5, 8000)[0], 8000), (tone(0.3, 22050, channels=2), 22050),
                      AudioArray(np.zeros(8000, np.float32), 8000)])
    assert z.shape == (3, 16) and torch.isfinite(z).all()


def test_save_and_load_round_trip(tiny, tmp_path, tone):
    module = AudioModality(**tiny).eval()
    inputs = [AudioArray(tone(1.0, 8000)[0], 8000)]
    load_back = load_modality(module.save(tmp_path / "audio"))
    assert load_back.config == module.config
    torch.testing.assert_close(load_back.embed(inputs), module.embed(inputs))


def _imagebind_like(module: AudioModality) -> dict[str, torch.Tensor]:
    """Our weights renamed back to ImageBind's layout (plus an unrelated modality's key)."""
    renames = {"encoder.cls_token": "modality_preprocessors.audio.cls_token",
               "encoder.proj.weight": "modality_preprocessors.audio.rgbt_stem.proj.weight",
               "encoder.stem_norm.weight": "modality_preprocessors.audio.rgbt_stem.norm_layer.weight",
               "encoder.stem_norm.bias": "modality_preprocessors.audio.rgbt_stem.norm_layer.bias",
               "encoder.pos_embed": "modality_preprocessors.audio.pos_embedding_helper.pos_embed",
               "head.norm.weight": "modality_heads.audio.0.weight", "head.norm.bias": "modality_heads.audio.0.bias",
               "head.proj.weight": "modality_heads.audio.2.weight"}
    state = {}
    for key, value in module.state_dict().items():
        state[renames.get(key, key.replace("encoder.trunk.", "modality_trunks.audio."))] = value
    state["modality_postprocessors.audio.1.log_logit_scale"] = torch.tensor(np.log(20.0), dtype=torch.float32)
    state["modality_trunks.depth.blocks.0.norm_1.weight"] = torch.ones(4)
    return state


def test_from_imagebind_round_trip_with_inferred_sizes(tiny):
    module = AudioModality(**{**tiny, "patch_stride": 8}).eval()
    state = _imagebind_like(module)
    front_end = {k: tiny[k] for k in ("sample_rate", "clip_duration", "clips_per_item", "num_mel_bins",
                                      "target_length")}
    loaded = AudioModality.from_imagebind(state, num_heads=2, **front_end).eval()
    assert (loaded.config.width, loaded.config.num_layers, loaded.config.embed_dim) == (32, 1, 16)
    assert loaded.config.patch_stride == 8 and loaded.logit_scale == pytest.approx(20.0)
    x = torch.randn(2, 2, 1, 32, 100)
    torch.testing.assert_close(loaded(x), module(x))


def test_from_imagebind_needs_the_stride_when_ambiguous(tiny):
    # Strides 11 and 12 both give a 2 x 8 patch grid on a 32 x 100 spectrogram.
    module = AudioModality(**{**tiny, "patch_stride": 12}).eval()
    front_end = {k: tiny[k] for k in ("sample_rate", "clip_duration", "num_mel_bins", "target_length")}
    with pytest.raises(ConfigError, match=r"candidate strides: \[11, 12\]"):
        AudioModality.from_imagebind(_imagebind_like(module), num_heads=2, **front_end)
    loaded = AudioModality.from_imagebind(_imagebind_like(module), num_heads=2, patch_stride=12, **front_end)
    assert loaded.config.patch_stride == 12


def test_from_imagebind_reports_mismatches(tiny):
    state = _imagebind_like(AudioModality(**tiny))
    with pytest.raises(ConfigError, match=r"modality_heads\.audio\.2\.weight"):
        AudioModality.from_imagebind({k: v for k, v in state.items() if "heads" not in k}, num_heads=2,
                                     num_mel_bins=32, target_length=100, sample_rate=8000, clip_duration=1.0)
    with pytest.raises(ConfigError, match="width=64 disagrees"):
        AudioModality.from_imagebind(state, num_heads=2, width=64, num_mel_bins=32, target_length=100,
                                     sample_rate=8000, clip_duration=1.0)
    with pytest.raises(ConfigError, match="cannot match"):
        AudioModality.from_imagebind(state, num_heads=2, sample_rate=8000, clip_duration=1.0)  # 128 x 204 input
    with pytest.raises(ConfigError, match="divisible"):
        AudioModality.from_imagebind(state, num_heads=3, num_mel_bins=32, target_length=100, sample_rate=8000,
                                     clip_duration=1.0)
