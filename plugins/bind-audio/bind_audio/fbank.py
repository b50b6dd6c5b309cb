"""Kaldi-compatible log-mel filterbank (``compute-fbank-feats`` / ``torchaudio.compliance.kaldi.fbank``
with ImageBind's options: no dither, no energy, HTK-compatible, Hann window, snip_edges), batched:
the frames of every clip of every input go through blocked FFTs and matmuls with the mel bank.

Per frame: remove the frame's mean (DC) → pre-emphasis ``x[n] - 0.97 x[n-1]`` with ``x[-1] = x[0]`` →
symmetric Hann window → zero-pad to a power of two → ``|rfft|^2`` → triangular mel filters on
``mel(f) = 1127 ln(1 + f / 700)`` → ``log(max(e, float32 eps))``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
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


CHUNK_FRAMES = 640  # frames per batch (3 clips of 2 s): small enough to stay in cache, large enough to batch


def log_mel(signals: list[Tensor], *, sample_rate: int, window: int, shift: int, fft_size: int, num_bins: int,
            low_freq: float, high_freq: float, preemphasis: float,
            normalise: tuple[float, float] | None = None) -> list[Tensor]:
    """1-D float32 signals → each signal's log-mel energies ``(num_bins, frames_i)`` (mel-major, the layout
    of the spectrogram images; 0 frames when shorter than one window), optionally normalised as
    ``(x - mean) / std`` with ``normalise=(mean, std)``.

    Kaldi removes each frame's mean ``m`` and then pre-emphasises; both are linear, so a frame equals
    ``p - (1 - a) m`` where ``p`` is the pre-emphasis of the *whole signal* cut into frames afterwards (its
    first sample being ``(1 - a) x[start]``, which the Hann window zeroes anyway). That does the per-sample
    work once per signal instead of once per overlapping frame; signals of equal length (the clips of a
    batch) are processed as one 2-D tensor, the windowed frames are written straight into a zero-padded
    FFT buffer, and FFT + mel matmul run over cache-sized batches.
    """
    counts = [num_frames(s.shape[-1], window, shift) for s in signals]
    by_length: dict[int, list[int]] = {}
    for index, signal in enumerate(signals):
        if counts[index]:
            by_length.setdefault(signal.shape[-1], []).append(index)
    bank_t = mel_filterbank(num_bins, fft_size, sample_rate, low_freq, high_freq).T
    result = [torch.empty(num_bins, 0)] * len(signals)
    # Batches of equal-length signals with about CHUNK_FRAMES frames, so every pass over the frame buffer
    # stays in cache (one huge buffer for a whole batch of files is several times slower).
    for members in by_length.values():
        count = counts[members[0]]
        per_batch = max(1, CHUNK_FRAMES // count)
        for first in range(0, len(members), per_batch):
            batch = members[first: first + per_batch]
            energies = _log_mel_batch(torch.stack([signals[i] for i in batch]), count, bank_t, window=window,
                                      shift=shift, fft_size=fft_size, preemphasis=preemphasis, normalise=normalise)
            for offset, index in enumerate(batch):
                result[index] = energies[offset]
    return result


def _log_mel_batch(signals: Tensor, count: int, bank_t: Tensor, *, window: int, shift: int, fft_size: int,
                   preemphasis: float, normalise: tuple[float, float] | None) -> Tensor:
    """Equal-length signals ``(B, L)`` with ``count`` frames each → log-mel energies ``(B, num_bins, count)``."""
    batch = signals.shape[0]
    taper = hann_window(window)
    # Removing each signal's mean first changes nothing (every frame loses its own mean below) but keeps a
    # large DC offset out of the float32 pre-emphasis.
    centred = signals.sub_(signals.mean(dim=1, keepdim=True))  # ``signals`` is a fresh stack: reuse it
    emphasised = torch.empty_like(centred)
    torch.sub(centred[:, 1:], centred[:, :-1], alpha=preemphasis, out=emphasised[:, 1:])
    emphasised[:, 0] = (1.0 - preemphasis) * centred[:, 0]
    padded = torch.empty(batch, count, fft_size)
    padded[:, :, window:] = 0.0  # the FFT's zero padding, written once instead of copied by rfft(n=...)
    frames = padded[:, :, :window]
    torch.mul(emphasised.unfold(1, window, shift)[:, :count], taper, out=frames)
    if taper[0] != 0:  # a frame's first sample is (1 - a) x[start], not x[start] - a x[start - 1]
        frames[:, :, 0] = (1.0 - preemphasis) * centred[:, : count * shift: shift] * taper[0]
    means = F.avg_pool1d(centred[:, None], window, shift)[:, 0, :count].reshape(-1)
    rows = padded.view(batch * count, fft_size)[:, :window]
    rows.addr_(means, taper, alpha=-(1.0 - preemphasis))  # the per-frame mean removal, windowed
    spectrum = torch.fft.rfft(padded.view(batch * count, fft_size))
    power = spectrum.real.square().addcmul_(spectrum.imag, spectrum.imag)  # |X|^2 without the slow complex abs
    energies = torch.matmul(bank_t, power.view(batch, count, -1).transpose(1, 2))  # (B, num_bins, count)
    energies.clamp_min_(LOG_FLOOR).log_()
    if normalise is not None:
        energies.sub_(normalise[0]).div_(normalise[1])
    return energies


__all__ = ["LOG_FLOOR", "hann_window", "log_mel", "mel_filterbank", "mel_scale", "num_frames"]
