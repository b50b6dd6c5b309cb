"""bindcore.signal_modality: config validation, shapes, gradients, and the stem's equivalence with
bind-imu's Linear-over-patches stem (ImageBind's IMU layout)."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from bindcore import ConfigError
from bindcore.signal_modality import SignalModality, SignalModalityConfig

TINY = {"num_steps": 32, "patch_size": 8, "width": 16, "num_layers": 2, "num_heads": 2, "embed_dim": 8}


class Emg(SignalModality):
    name: ClassVar[str] = "emg"
    in_chans: ClassVar[int] = 3


def test_config_validation():
    with pytest.raises(ConfigError, match="divisible"):
        Emg(**{**TINY, "num_heads": 3})
    with pytest.raises(ConfigError, match="not a multiple of patch_size"):
        Emg(**{**TINY, "num_steps": 36})
    assert SignalModalityConfig().width == 512


def test_shapes_unit_norm_and_axes():
    m = Emg(**TINY).eval()
    assert m.input_shape == (3, 32) and m.embed_dim == 8
    assert m.encoder.grid == (1, 4)  # one token per patch_size steps, across all channels
    assert m.augment_axes == {"time": -1}
    z = m(torch.randn(4, 3, 32))
    assert z.shape == (4, 8)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(4))
    with pytest.raises(ValueError, match="run preprocess"):
        m.encode(torch.randn(4, 3, 1, 32))  # already a map
    with pytest.raises(ValueError, match=r"expected a \(B, 3, 32\) batch"):
        m.encode(torch.randn(4, 2, 32))  # wrong channel count


def test_gradients_reach_every_parameter():
    m = Emg(**TINY).train()
    m(torch.randn(3, 3, 32, generator=torch.Generator().manual_seed(0))).sum().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_stem_equals_imagebind_imu_stem_after_a_reshape():
    """The docstring's claim: the (1, p) conv equals bind-imu's Linear over channel-major patches."""
    encoder_module = pytest.importorskip("bind_imu.encoder")
    torch.manual_seed(0)
    imu = encoder_module.ImuEncoder(in_chans=3, num_steps=32, patch_size=8, width=16, num_layers=1,
                                    num_heads=2).eval()
    ours = Emg(**{**TINY, "num_layers": 1}).eval()
    state = dict(imu.state_dict())
    state["proj.weight"] = state["proj.weight"].reshape(16, 3, 1, 8)
    ours.encoder.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 32)
    torch.testing.assert_close(ours.encode(x), imu(x), atol=1e-5, rtol=1e-5)
