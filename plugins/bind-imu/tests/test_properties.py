"""Hypothesis properties of IMU preprocessing: for any valid length and sample rate the output has the
configured shape, is float32, finite and deterministic; resampling keeps constants and the mean of a sine."""

from __future__ import annotations

import numpy as np
import torch
from bind_imu import ImuConfig, ImuRecording
from bind_imu.preprocess import preprocess_items, resample
from hypothesis import given, settings
from hypothesis import strategies as st

rates = st.floats(min_value=5.0, max_value=2000.0, allow_nan=False)
lengths = st.integers(min_value=8, max_value=1500)


@settings(max_examples=40, deadline=None)
@given(length=lengths, rate=rates, seed=st.integers(0, 2**32 - 1),
       num_windows=st.integers(1, 3), layout=st.sampled_from(["channels_first", "channels_last"]),
       pad_mode=st.sampled_from(["edge", "zeros", "repeat"]),
       normalization=st.sampled_from(["none", "per_window", "fixed"]))
def test_any_valid_recording_preprocesses(length: int, rate: float, seed: int, num_windows: int, layout: str,
                                          pad_mode: str, normalization: str) -> None:
    config = ImuConfig(window_seconds=1.0, window_steps=160, num_windows=num_windows, pad_mode=pad_mode,
                       normalization=normalization, channel_std=(2.0,) * 6)
    samples = np.random.default_rng(seed).normal(0.0, 5.0, (6, length)).astype(np.float32)
    if layout == "channels_last":
        samples = samples.T.copy()
    recording = ImuRecording(samples, rate, layout)  # type: ignore[arg-type]
    out = preprocess_items([recording], config)
    assert out.shape == (1, num_windows, 6, 160)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert torch.equal(out, preprocess_items([recording], config))


@settings(max_examples=40, deadline=None)
@given(length=lengths, rate=rates, target=rates, value=st.floats(-50.0, 50.0))
def test_resampling_preserves_a_constant(length: int, rate: float, target: float, value: float) -> None:
    out = resample(np.full((6, length), value), rate, target)
    assert np.allclose(out, value, atol=1e-9 * max(1.0, abs(value)) * length)


@settings(max_examples=40, deadline=None)
@given(length=st.integers(16, 1500), rate=rates, target=rates, offset=st.floats(-20.0, 20.0),
       amplitude=st.floats(0.0, 10.0), cycles=st.floats(0.1, 20.0), phase=st.floats(0.0, 6.3))
def test_resampling_preserves_the_mean_of_a_sine(length: int, rate: float, target: float, offset: float,
                                                 amplitude: float, cycles: float, phase: float) -> None:
    time = np.arange(length) / length
    sine = offset + amplitude * np.sin(2 * np.pi * cycles * time + phase)
    out = resample(np.tile(sine, (6, 1)), rate, target)
    assert np.allclose(out.mean(axis=-1), sine.mean(), atol=1e-9 * (1 + abs(offset) + amplitude))


@settings(max_examples=25, deadline=None)
@given(length=lengths, rate=rates, value=st.floats(-20.0, 20.0))
def test_constant_recording_stays_constant_end_to_end(length: int, rate: float, value: float) -> None:
    config = ImuConfig(window_seconds=0.5, window_steps=80, num_windows=2)  # edge padding, no normalisation
    out = preprocess_items([ImuRecording(np.full((6, length), value), rate)], config)
    assert torch.allclose(out, torch.full_like(out, value), atol=1e-5 * max(1.0, abs(value)))
