"""Raw audio inputs → normalised log-mel clips ``(N, clips, 1, num_mel_bins, target_length)``.

Per input: resampled length ``L = ceil(frames * rate / input_rate)``; ``clips_per_item`` windows of
``clip_duration`` placed evenly over it (ImageBind's pinned pytorchvideo sampler, see
:func:`clip_windows`); only the input frames those windows need are read and resampled (overlapping
windows are merged, so a short file is read and resampled once). Each clip is processed on its own
copy (the reference's in-place mean leaks between overlapping clips; we do not reproduce that), then the
clips of all inputs go through the Kaldi filterbank together (:func:`bind_audio.fbank.log_mel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bind_audio.config import AudioConfig
from bind_audio.fbank import log_mel
from bind_audio.inputs import AudioSource, open_source
from bind_audio.resample import input_range, resample_range, resampled_length
from bindcore import InputError


def clip_windows(num_samples: int, sample_rate: int, clip_duration: float, clips: int) -> list[tuple[int, int]]:
    """Sample windows ``[start, stop)`` of ``clips`` clips spread over ``num_samples`` samples.

    The reference's rule (pytorchvideo ``ConstantClipsPerVideoSampler`` at the commit ImageBind pins):
    ``duration = num_samples / rate`` (a float), ``step = Fraction(max(duration - clip, 0)) / max(clips - 1, 1)``,
    clip ``k`` spans ``[k step, k step + clip]`` seconds, converted with ``int(seconds * rate)`` and clamped
    to the signal (so inputs shorter than a clip give short clips, all starting at 0). Evaluated exactly
    with integers (the floats' exact ratios), which is what the reference's ``Fraction`` arithmetic does.
    """
    span_num, span_den = float(max(num_samples / sample_rate - clip_duration, 0)).as_integer_ratio()
    span_den *= max(clips - 1, 1)  # step = span_num / span_den seconds
    clip_num, clip_den = float(clip_duration).as_integer_ratio()
    windows = []
    for k in range(clips):
        start = k * span_num * sample_rate // span_den
        stop = (k * span_num * clip_den + clip_num * span_den) * sample_rate // (span_den * clip_den)
        windows.append((min(start, num_samples), min(stop, num_samples)))
    return windows


def _merge(windows: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Union of windows, joining those closer than ``gap`` samples (read once rather than twice)."""
    merged: list[list[int]] = []
    for start, stop in sorted(windows):
        if merged and start <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    return [(a, b) for a, b in merged]


def load_clips(source: AudioSource, config: AudioConfig) -> list[Tensor]:
    """The ``clips_per_item`` mono clips of one input at ``config.sample_rate`` (float32, unnormalised)."""
    rate, target = source.sample_rate, config.sample_rate
    length = resampled_length(source.num_frames, rate, target)
    if length < config.window_samples:
        raise InputError(source.item, f"audio is too short: {source.num_frames} frames at {rate} Hz, less than one "
                         f"{config.frame_length_ms:g} ms analysis window", fix="pass a longer recording")
    windows = clip_windows(length, target, config.clip_duration, config.clips_per_item)
    segments: dict[tuple[int, int], Tensor] = {}
    for seg_start, seg_stop in _merge(windows, gap=config.window_samples):
        lo, hi = input_range(seg_start, seg_stop, rate, target, config.resample_lowpass_width, config.resample_rolloff)
        lo, hi = max(lo, 0), min(hi, source.num_frames)
        mono = source.read_mono(lo, hi, config.channel)
        if not np.isfinite(mono).all():
            bad = int(np.flatnonzero(~np.isfinite(mono))[0])
            raise InputError(source.item, f"sample {lo + bad} is {mono[bad]!r}",
                             fix="remove NaN/Inf samples before embedding")
        mono = torch.from_numpy(mono)
        segments[(seg_start, seg_stop)] = resample_range(
            mono, lo, source.num_frames, seg_start, seg_stop, rate, target,
            config.resample_lowpass_width, config.resample_rolloff)
    clips = []
    for start, stop in windows:
        seg_start, segment = next((a, seg) for (a, b), seg in segments.items() if a <= start and stop <= b)
        clip = segment[start - seg_start: stop - seg_start]
        clips.append(clip - clip.mean())  # a copy per clip: no leakage between overlapping clips
    return clips


def spectrograms(clips: list[Tensor], config: AudioConfig) -> Tensor:
    """Mono clips → normalised log-mel images ``(len(clips), 1, num_mel_bins, target_length)``, batched."""
    features = log_mel(clips, sample_rate=config.sample_rate, window=config.window_samples,
                       shift=config.shift_samples, fft_size=config.fft_size, num_bins=config.num_mel_bins,
                       low_freq=config.low_freq, high_freq=config.mel_high_freq, preemphasis=config.preemphasis,
                       normalise=(config.mean, config.std))
    pad = float(torch.tensor(config.pad_value).sub(config.mean).div(config.std))  # float32, as the reference
    out = torch.empty(len(clips), config.num_mel_bins, config.target_length)
    for index, clip_features in enumerate(features):
        keep = min(clip_features.shape[1], config.target_length)  # cut long clips, right-pad short ones
        out[index, :, :keep] = clip_features[:, :keep]
        out[index, :, keep:] = pad
    return out.unsqueeze(1)


def preprocess(inputs: Sequence[Any], config: AudioConfig) -> Tensor:
    """Raw inputs (paths, :class:`~bind_audio.AudioArray`, ``(samples, rate)`` tuples) → ``(N, clips, 1, F, T)``."""
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
        raise InputError(inputs, "preprocess takes a sequence of inputs", fix="wrap a single input in a list")
    clips: list[Tensor] = []
    for item in inputs:
        with open_source(item) as source:
            clips.extend(load_clips(source, config))
    if not clips:
        return torch.zeros(0, config.clips_per_item, 1, *config.input_size)
    images = spectrograms(clips, config).reshape(len(inputs), config.clips_per_item, 1, *config.input_size)
    if torch.isfinite(images.sum()):  # one cheap reduction; any Inf/NaN cell would make the sum non-finite
        return images
    finite = torch.isfinite(images).flatten(1).all(dim=1)
    if not finite.all():  # e.g. samples around 1e20: their power overflows float32
        raise InputError(inputs[int((~finite).nonzero()[0])], "its log-mel spectrogram overflows float32",
                         fix="scale the samples to the usual [-1, 1] range")
    return images
