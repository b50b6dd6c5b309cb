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
    """1-D float32 signals → each signal's frames' log-mel energies ``(frames_i, num_bins)`` (0 frames when
    shorter than one window), optionally normalised as ``(x - mean) / std`` with ``normalise=(mean, std)``.

    Kaldi removes each frame's mean ``m`` and then pre-emphasises; both are linear, so a frame equals
    ``p - (1 - a) m`` where ``p`` is the pre-emphasis of the *whole signal* cut into frames afterwards (its
    first sample being ``(1 - a) x[start]``, which the Hann window zeroes anyway). That does the per-sample
    work once per signal instead of once per overlapping frame; signals of equal length (the clips of a
    batch) are processed as one 2-D tensor, the windowed frames are written straight into one buffer, and
    FFT + mel matmul run over it in cache-sized blocks.
    """
    counts = [num_frames(s.shape[-1], window, shift) for s in signals]
    by_length: dict[int, list[int]] = {}
    for index, signal in enumerate(signals):
        if counts[index]:
            by_length.setdefault(signal.shape[-1], []).append(index)
    # Work in batches of equal-length signals with about CHUNK_FRAMES frames, so that every pass over the
    # frame buffer stays in cache (one huge buffer for a whole batch of files is several times slower).
    batches = []
    for members in by_length.values():
        per_batch = max(1, CHUNK_FRAMES // counts[members[0]])
        batches += [members[i: i + per_batch] for i in range(0, len(members), per_batch)]
    energies = torch.empty(sum(counts), num_bins)
    result = [energies[:0]] * len(signals)
    row = 0
    for members in batches:
        count = counts[members[0]]
        block = energies[row: row + len(members) * count]
        _log_mel_batch(torch.stack([signals[i] for i in members]), count, block, window=window, shift=shift,
                       fft_size=fft_size, bank=mel_filterbank(num_bins, fft_size, sample_rate, low_freq, high_freq),
                       preemphasis=preemphasis, normalise=normalise)
        for offset, index in enumerate(members):
            result[index] = block[offset * count: (offset + 1) * count]
        row += len(members) * count
    return result


def _log_mel_batch(signals: Tensor, count: int, out: Tensor, *, window: int, shift: int, fft_size: int, bank: Tensor,
                   preemphasis: float, normalise: tuple[float, float] | None) -> None:
    """Equal-length signals ``(B, L)`` with ``count`` frames each → log-mel energies written to ``out``."""
    batch = signals.shape[0]
    taper = hann_window(window)
    # Removing each signal's mean first changes nothing (every frame loses its own mean below) but keeps a
    # large DC offset out of the float32 pre-emphasis.
    centred = signals - signals.mean(dim=1, keepdim=True)
    emphasised = torch.empty_like(centred)
    torch.sub(centred[:, 1:], centred[:, :-1], alpha=preemphasis, out=emphasised[:, 1:])
    emphasised[:, 0] = (1.0 - preemphasis) * centred[:, 0]
    frames = torch.empty(batch, count, window)
    torch.mul(emphasised.unfold(1, window, shift)[:, :count], taper, out=frames)
    if taper[0] != 0:  # a frame's first sample is (1 - a) x[start], not x[start] - a x[start - 1]
        frames[:, :, 0] = (1.0 - preemphasis) * centred[:, : count * shift: shift] * taper[0]
    means = F.avg_pool1d(centred[:, None], window, shift)[:, 0, :count].reshape(-1)
    frames = frames.view(batch * count, window)
    frames.addr_(means, taper, alpha=-(1.0 - preemphasis))  # the per-frame mean removal, windowed
    spectrum = torch.fft.rfft(frames, n=fft_size)
    power = spectrum.real.square() + spectrum.imag.square()  # |X|^2 without the slow complex abs
    torch.mm(power, bank, out=out)
    out.clamp_min_(LOG_FLOOR).log_()
    if normalise is not None:
        out.sub_(normalise[0]).div_(normalise[1])


__all__ = ["LOG_FLOOR", "hann_window", "log_mel", "mel_filterbank", "mel_scale", "num_frames"]
