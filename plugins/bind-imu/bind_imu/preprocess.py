"""Raw IMU inputs → ``(N, num_windows, 6, window_steps)`` float32 tensors.

Per item: read/validate (:func:`as_channels_first`) → FFT-resample the whole recording to
``window_steps / window_seconds`` Hz (:func:`resample`) → pad or cut ``num_windows`` evenly spaced
windows (:func:`split_windows`) → per-channel normalisation (:func:`normalize`). Pure and deterministic.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.signal
import torch
from torch import Tensor

from bind_imu.config import CHANNELS, MAX_RESAMPLED_STEPS, NUM_CHANNELS, ImuConfig
from bind_imu.recording import LAYOUTS, ImuRecording
from bindcore import InputError

_RATE_TOLERANCE = 1e-9


def _as_array(samples: Any, item: object) -> np.ndarray:
    if isinstance(samples, torch.Tensor):
        if samples.is_complex():
            raise InputError(item, f"complex samples ({samples.dtype})", fix="IMU samples must be real numbers")
        samples = samples.detach().cpu()
        if samples.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16; both fit float32 exactly
            samples = samples.float()
        samples = samples.numpy()
    try:
        array = np.asarray(samples)
    except (ValueError, TypeError) as exc:
        raise InputError(item, f"samples are not a rectangular array ({exc})",
                         fix="pass a (6, T) or (T, 6) numeric array") from None
    if array.dtype.kind not in "iuf":
        raise InputError(item, f"unsupported sample dtype {array.dtype}",
                         fix="IMU samples must be real numbers (float or integer arrays)")
    return array


def as_channels_first(recording: ImuRecording, item: object, min_samples: int) -> tuple[np.ndarray, float]:
    """Validate ``recording`` and return its samples as float64 ``(6, T)`` and its rate; errors name ``item``."""
    array = _as_array(recording.samples, item)
    if recording.layout not in LAYOUTS:
        raise InputError(item, f"unknown layout {recording.layout!r}", fix=f"use one of {', '.join(LAYOUTS)}")
    if array.ndim != 2:
        raise InputError(item, f"samples must be 2-D (channels and time), got shape {array.shape}",
                         fix="pass one recording per item as a (6, T) or (T, 6) array")
    channel_axis = 0 if recording.layout == "channels_first" else 1
    if array.shape[channel_axis] != NUM_CHANNELS:
        hint = ""
        if array.shape[1 - channel_axis] == NUM_CHANNELS:
            other = LAYOUTS[1 - LAYOUTS.index(recording.layout)]
            hint = f"; the other axis has 6 entries, did you mean layout={other!r}?"
        raise InputError(item, f"expected {NUM_CHANNELS} channels on axis {channel_axis} ({recording.layout}), "
                               f"got shape {array.shape}{hint}",
                         fix=f"channels are {', '.join(CHANNELS)}")
    data = np.ascontiguousarray(array.T if channel_axis else array, dtype=np.float64)
    rate = recording.sample_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not np.isfinite(rate) or rate <= 0:
        raise InputError(item, f"sample_rate must be a positive finite number of Hz, got {rate!r}")
    if data.shape[1] < min_samples:
        raise InputError(item, f"recording has {data.shape[1]} samples, fewer than min_samples={min_samples}",
                         fix="pass a longer recording (short ones are padded, but need enough samples to resample)")
    finite = np.isfinite(data)
    if not finite.all():
        bad = [f"{CHANNELS[c]} ({int((~finite[c]).sum())})" for c in range(NUM_CHANNELS) if not finite[c].all()]
        raise InputError(item, f"NaN or Inf samples in {', '.join(bad)}",
                         fix="interpolate or drop the gaps before embedding")
    return data, float(rate)


def resample(samples: np.ndarray, rate: float, target_rate: float) -> np.ndarray:
    """FFT resampling (``scipy.signal.resample``) of ``(C, T)`` from ``rate`` to ``target_rate`` Hz.

    Keeps the DC bin, so a constant signal stays constant and the mean of any signal is preserved exactly;
    treats the recording as periodic (a jump between its last and first sample rings at the edges).
    Equal rates return the input unchanged.
    """
    if _same_rate(rate, target_rate):
        return samples
    return scipy.signal.resample(samples, resampled_length(samples.shape[-1], rate, target_rate), axis=-1)


def _same_rate(rate: float, target_rate: float) -> bool:
    return abs(rate - target_rate) <= _RATE_TOLERANCE * target_rate


def resampled_length(num_samples: int, rate: float, target_rate: float) -> int:
    """Steps that :func:`resample` turns ``num_samples`` at ``rate`` Hz into at ``target_rate`` Hz."""
    return num_samples if _same_rate(rate, target_rate) else max(1, round(num_samples * target_rate / rate))


def window_starts(length: int, window: int, count: int) -> list[int]:
    """Evenly spaced window starts: the first at 0, the last ending at ``length`` (one window: centred)."""
    if length <= window:
        return [0] * count
    if count == 1:
        return [(length - window) // 2]
    return [round(k * (length - window) / (count - 1)) for k in range(count)]


def pad(samples: np.ndarray, window: int, mode: str) -> np.ndarray:
    """Extend ``(C, T)`` with ``T < window`` at the end to ``window`` steps."""
    missing = window - samples.shape[-1]
    if missing <= 0:
        return samples
    if mode == "edge":
        return np.pad(samples, ((0, 0), (0, missing)), mode="edge")
    if mode == "zeros":
        return np.pad(samples, ((0, 0), (0, missing)))
    if mode == "repeat":
        return samples[:, np.arange(window) % samples.shape[-1]]
    raise ValueError(f"unknown pad mode {mode!r}")


def split_windows(samples: np.ndarray, window: int, count: int, pad_mode: str) -> np.ndarray:
    """``(C, T)`` → ``(count, C, window)``: padded if short, else ``count`` evenly spaced windows."""
    samples = pad(samples, window, pad_mode)
    return np.stack([samples[:, s:s + window] for s in window_starts(samples.shape[-1], window, count)])


def normalize(windows: np.ndarray, config: ImuConfig) -> np.ndarray:
    """Per-channel normalisation of ``(S, C, T)`` windows as chosen by ``config.normalization``."""
    if config.normalization == "none":
        return windows
    if config.normalization == "fixed":
        mean = np.asarray(config.channel_mean)[:, None]
        std = np.asarray(config.channel_std)[:, None]
        return (windows - mean) / std
    mean = windows.mean(axis=-1, keepdims=True)
    std = windows.std(axis=-1, keepdims=True)
    return (windows - mean) / np.maximum(std, config.norm_eps)


def load_item(item: object, config: ImuConfig) -> tuple[np.ndarray, float]:
    """Any accepted raw input → validated float64 ``(6, T)`` samples and their rate."""
    if isinstance(item, ImuRecording):
        return as_channels_first(item, item, config.min_samples)
    if isinstance(item, (str, os.PathLike)):
        recording = ImuRecording.from_file(item, default_sample_rate=config.default_sample_rate)
        return as_channels_first(recording, os.fspath(item), config.min_samples)
    if isinstance(item, (np.ndarray, torch.Tensor)):
        raise InputError(item, "a bare array has no declared layout or sample rate",
                         fix="wrap it: ImuRecording(samples, sample_rate, layout='channels_first' or "
                             "'channels_last')")
    raise InputError(item, f"unsupported IMU input type {type(item).__name__}",
                     fix="pass an ImuRecording or the path of a .npy/.csv file")


def preprocess_one(item: object, config: ImuConfig) -> np.ndarray:
    """One raw input → float32 ``(num_windows, 6, window_steps)``."""
    samples, rate = load_item(item, config)
    # In floats first: for a rate like 1e-310 Hz the length is not even a finite number (round() would raise).
    steps = samples.shape[-1] * (config.target_sample_rate / rate)
    if not steps <= MAX_RESAMPLED_STEPS:
        hours = steps / config.target_sample_rate / 3600
        raise InputError(item, f"{samples.shape[-1]} samples at sample_rate={rate:g} Hz resample to {steps:,.0f} "
                               f"steps ({hours:.1f} h at {config.target_sample_rate:g} Hz), more than the "
                               f"{MAX_RESAMPLED_STEPS:,} that preprocessing holds in memory",
                         fix="check that sample_rate is in Hz (not kHz, and not a period), or cut the recording "
                             "to the part you want to embed")
    samples = resample(samples, rate, config.target_sample_rate)
    windows = normalize(split_windows(samples, config.window_steps, config.num_windows, config.pad_mode), config)
    peak = float(np.abs(windows).max())
    if not peak <= config.max_abs_value:  # also NaN; beyond ~1e18 the float32 encoder gives NaN embeddings
        raise InputError(item, f"preprocessed values reach {peak:.3g}, above max_abs_value={config.max_abs_value:g} "
                               "(beyond any IMU's range; the float32 encoder would overflow near 1e18)",
                         fix="check the units of the samples (m/s^2 and rad/s), normalise them "
                             "(normalization='per_window'), or raise max_abs_value")
    return windows.astype(np.float32)


def preprocess_items(inputs: Sequence[object], config: ImuConfig) -> Tensor:
    """Raw inputs → ``(N, num_windows, 6, window_steps)`` float32 CPU tensor."""
    if isinstance(inputs, (str, os.PathLike, ImuRecording)):
        inputs = [inputs]
    batch = [preprocess_one(item, config) for item in inputs]
    if not batch:
        return torch.zeros(0, config.num_windows, NUM_CHANNELS, config.window_steps)
    return torch.from_numpy(np.stack(batch))
