"""Hypothesis properties of the audio preprocessor over random waveforms."""

from __future__ import annotations

import numpy as np
import torch
from bind_audio import AudioArray, AudioConfig
from bind_audio.preprocess import preprocess
from hypothesis import given, settings
from hypothesis import strategies as st

CONFIG = AudioConfig(sample_rate=8000, clip_duration=0.5, clips_per_item=2, num_mel_bins=24, target_length=48)
FLOOR = (np.log(np.finfo(np.float32).eps) - CONFIG.mean) / CONFIG.std
PAD = float((torch.tensor(CONFIG.pad_value) - CONFIG.mean) / CONFIG.std)  # as computed, in float32


@st.composite
def waveforms(draw) -> AudioArray:
    rate = draw(st.sampled_from([4000, 8000, 11025, 16000, 22050, 44100, 48000]) | st.integers(3000, 50000))
    seconds = draw(st.floats(0.03, 1.2))
    channels = draw(st.integers(1, 3))
    amplitude = draw(st.floats(1e-4, 10.0))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = max(int(seconds * rate), 1)
    t = np.arange(n) / rate
    freq = rng.uniform(50, min(rate / 2, 3900))
    signal = np.sin(2 * np.pi * freq * t) + 0.3 * rng.standard_normal((channels, n))
    return AudioArray((amplitude * signal).astype(np.float32), rate)


def _long_enough(audio: AudioArray) -> bool:
    return audio.samples.shape[1] * CONFIG.sample_rate / audio.sample_rate >= CONFIG.window_samples + 1


@settings(max_examples=30, deadline=None)
@given(waveforms())
def test_shape_dtype_finite_deterministic(audio):
    if not _long_enough(audio):
        return
    first = preprocess([audio], CONFIG)
    assert first.shape == (1, 2, 1, 24, 48) and first.dtype == torch.float32
    assert torch.isfinite(first).all()
    assert torch.equal(first, preprocess([audio], CONFIG))
    # batching does not change an item's result
    batch = preprocess([audio, AudioArray(audio.samples[:, ::-1].copy(), audio.sample_rate)], CONFIG)
    torch.testing.assert_close(batch[:1], first, atol=1e-6, rtol=0)


@settings(max_examples=30, deadline=None)
@given(waveforms())
def test_sign_flip_is_invariant(audio):
    if not _long_enough(audio):
        return
    flipped = AudioArray(-audio.samples, audio.sample_rate)
    torch.testing.assert_close(preprocess([flipped], CONFIG), preprocess([audio], CONFIG), atol=1e-5, rtol=0)


@settings(max_examples=30, deadline=None)
@given(waveforms(), st.floats(0.05, 20.0))
def test_gain_shifts_log_mel_by_a_constant(audio, gain):
    if not _long_enough(audio):
        return
    base = preprocess([audio], CONFIG)
    louder = preprocess([AudioArray(audio.samples * np.float32(gain), audio.sample_rate)], CONFIG)
    # log(g^2 E) = log E + 2 log g, except where the energy floor or the padding takes over.
    shift = 2 * np.log(gain) / CONFIG.std
    margin = 2 * abs(np.log(gain)) / CONFIG.std + 1.0
    live = (base > FLOOR + margin) & (base != PAD)
    if live.any():
        torch.testing.assert_close((louder - base)[live], torch.full_like(base[live], shift), atol=2e-3, rtol=0)
    padded = base == PAD
    assert torch.equal(louder[padded], base[padded])


@settings(max_examples=20, deadline=None)
@given(waveforms(), st.floats(-1.0, 1.0))
def test_dc_offset_is_removed(audio, offset):
    if not _long_enough(audio) or audio.sample_rate != CONFIG.sample_rate:
        return  # resampling turns the offset into edge transients; without it the offset must vanish
    shifted = AudioArray(audio.samples + np.float32(offset), audio.sample_rate)
    base = preprocess([audio], CONFIG)
    live = base > FLOOR + 2.0  # compare where the energy is well above float32 rounding of the offset
    torch.testing.assert_close(preprocess([shifted], CONFIG)[live], base[live], atol=5e-3, rtol=0)
