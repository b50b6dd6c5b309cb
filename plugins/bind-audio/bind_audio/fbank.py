"""Kaldi-compatible log-mel filterbank (``compute-fbank-feats`` / ``torchaudio.compliance.kaldi.fbank``
with ImageBind's options: no dither, no energy, HTK-compatible, Hann window, snip_edges), batched:
the frames of every clip of every input go through one FFT and one matmul with the mel bank.

Per frame: remove the frame's mean (DC) → pre-emphasis ``x[n] - 0.97 x[n-1]`` with ``x[-1] = x[0]`` →
symmetric Hann window → zero-pad to a power of two → ``|rfft|^2`` → triangular mel filters on
``mel(f) = 1127 ln(1 + f / 700)`` → ``log(max(e, float32 eps))``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

LOG_FLOOR = float(np.finfo(np.float32).eps)  # 1.1920929e-07, Kaldi's energy floor before the log


def mel_scale(freq: np.ndarray | float) -> np.ndarray | float:
    return 1127.0 * np.log(1.0 + np.asarray(freq) / 700.0)


@lru_cache(maxsize=16)
def mel_filterbank(num_bins: int, fft_size: int, sample_rate: int, low_freq: float, high_freq: float) -> Tensor:
    """``(fft_size // 2 + 1, num_bins)`` float32 triangular filters, equally spaced in mel between
    ``low_freq`` and ``high_freq``; the Nyquist FFT bin gets weight 0, as in Kaldi."""
    num_fft_bins = fft_size // 2
    bin_width = sample_rate / fft_size
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high_freq)
    delta = (mel_high - mel_low) / (num_bins + 1)
    edges = mel_low + delta * np.arange(num_bins + 2)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    mel = mel_scale(bin_width * np.arange(num_fft_bins))[None, :]
    rising = (mel - left) / (center - left)
    falling = (right - mel) / (right - center)
    bank = np.maximum(0.0, np.minimum(rising, falling))  # (num_bins, num_fft_bins)
    bank = np.concatenate([bank, np.zeros((num_bins, 1))], axis=1)
    return torch.from_numpy(bank.T.astype(np.float32)).contiguous()


@lru_cache(maxsize=16)
def hann_window(length: int) -> Tensor:
    """Symmetric Hann window (``0.5 - 0.5 cos(2 pi n / (N - 1))``), Kaldi's "hanning"."""
    return torch.hann_window(length, periodic=False, dtype=torch.float32)


def num_frames(num_samples: int, window: int, shift: int) -> int:
    """Frames Kaldi's ``snip_edges=True`` framing yields (0 when shorter than one window)."""
    return 0 if num_samples < window else 1 + (num_samples - window) // shift


def frame_signals(signals: list[Tensor], window: int, shift: int) -> tuple[Tensor, list[int]]:
    """Cut 1-D signals into overlapping frames ``(total_frames, window)`` (views, then one concat)."""
    counts = [num_frames(s.shape[-1], window, shift) for s in signals]
    frames = [s.unfold(-1, window, shift)[:n] for s, n in zip(signals, counts, strict=True) if n]
    if not frames:
        return torch.zeros(0, window), counts
    return torch.cat(frames), counts


def log_mel(frames: Tensor, *, sample_rate: int, num_bins: int, fft_size: int, low_freq: float, high_freq: float,
            preemphasis: float) -> Tensor:
    """Frames ``(F, window)`` float32 → log-mel energies ``(F, num_bins)``."""
    frames = frames - frames.mean(dim=1, keepdim=True)
    if preemphasis:
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
        frames = frames - preemphasis * previous
    frames = frames * hann_window(frames.shape[1])
    power = torch.fft.rfft(frames, n=fft_size).abs().pow(2)
    energies = power @ mel_filterbank(num_bins, fft_size, sample_rate, low_freq, high_freq)
    return energies.clamp_min(LOG_FLOOR).log()


__all__ = ["LOG_FLOOR", "frame_signals", "hann_window", "log_mel", "mel_filterbank", "mel_scale", "num_frames"]
