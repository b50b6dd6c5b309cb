"""Kaldi-compatible log-mel filterbank (``compute-fbank-feats`` / ``torchaudio.compliance.kaldi.fbank``
with ImageBind's options: no dither, no energy, HTK-compatible, Hann window, snip_edges), batched:
the frames of every clip of every input go through blocked FFTs and matmuls with the mel bank.

Per frame: remove the frame's mean (DC) → pre-emphasis ``x[n] - 0.97 x[n-1]`` with ``x[-1] = x[0]`` →
symmetric Hann window → zero-pad to a power of two → ``|rfft|^2`` → triangular mel filters on
``mel(f) = 1127 ln(1 + f / 700)`` → ``log(max(e, float32 eps))``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
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


@lru_cache(maxsize=16)
def _hann_first(length: int) -> float:
    return float(hann_window(length)[0])


def num_frames(num_samples: int, window: int, shift: int) -> int:
    """Frames Kaldi's ``snip_edges=True`` framing yields (0 when shorter than one window)."""
    return 0 if num_samples < window else 1 + (num_samples - window) // shift


CHUNK_FRAMES = 640  # most frames per FFT/matmul pass (3 clips of 2 s): the FFT buffer stays in cache
MIN_MATMUL_FRAMES = 16  # see log_mel_frames
MEL_BAND_GROUPS = 8  # mel filters are multiplied in this many groups, each over its own band of FFT bins


@lru_cache(maxsize=16)
def mel_bands(num_bins: int, fft_size: int, sample_rate: int, low_freq: float,
              high_freq: float) -> tuple[tuple[int, int, int, int, Tensor], ...]:
    """The mel bank split into groups of adjacent filters, each with the FFT bins it touches:
    ``(first_filter, stop_filter, first_col, stop_col, weights)`` where columns index the interleaved
    ``(re², im²)`` power layout (``2 * bin`` and ``2 * bin + 1``) and ``weights`` is ``(filters, cols)``.

    The bank has ~2 non-zeros per FFT bin (504 of 32 896 at 128 bins / 512-point FFT), so multiplying each
    group over its own band does a fraction of the dense matmul's work; interleaving the bank lets the
    matmul add re² + im² itself (no separate pass to form |X|²).
    """
    bank = mel_filterbank(num_bins, fft_size, sample_rate, low_freq, high_freq)  # (bins, num_bins)
    interleaved = bank.repeat_interleave(2, dim=0)
    groups = []
    for members in np.array_split(np.arange(num_bins), min(MEL_BAND_GROUPS, num_bins)):
        first, stop = int(members[0]), int(members[-1]) + 1
        used = (bank[:, first:stop] != 0).any(dim=1).nonzero().flatten()
        lo, hi = (2 * int(used[0]), 2 * int(used[-1]) + 2) if len(used) else (0, 0)
        groups.append((first, stop, lo, hi, interleaved[lo:hi, first:stop].T.contiguous()))
    return tuple(groups)


def _frame_means(signal: Tensor, window: int, shift: int, count: int) -> Tensor:
    """Mean of each of the first ``count`` frames ``signal[g shift: g shift + window]``."""
    block = math.gcd(window, shift)
    if block >= 8:  # sum blocks of gcd(window, shift) samples once, then each frame adds window / gcd blocks
        used = signal[: (count - 1) * shift + window]
        sums = used.reshape(-1, block).sum(dim=1).unfold(0, window // block, shift // block).sum(dim=1)
        return sums.div_(window)
    return F.avg_pool1d(signal[None, None], window, shift)[0, 0, :count]


SCRATCH_LIMIT = 1 << 20  # signals up to this many samples reuse a per-thread pre-emphasis buffer
_scratch = threading.local()  # per thread: buffers reused across calls (one call at a time per thread)


def _scratch_buffers(chunk: int, fft_size: int, window: int, num_bins: int) -> tuple[Tensor, Tensor]:
    """This thread's FFT input ``(chunk, fft_size)`` (columns from ``window`` on are zero, and stay so) and
    log buffer ``(num_bins, multiple of 64 >= chunk)`` (columns from ``chunk`` on hold 1.0), made once per
    shape: allocating and zero-filling them on every call was a fixed cost of a one-file call."""
    # Tensors made in inference mode cannot be written outside it (and vice versa is fine but slower): one
    # set of buffers per mode.
    key = (chunk, fft_size, window, num_bins, torch.is_inference_mode_enabled())
    cache = getattr(_scratch, "buffers", None)
    if cache is None or cache[0] != key:
        padded = torch.empty(chunk, fft_size)
        padded[:, window:] = 0.0  # the FFT's zero padding, written once
        mel = torch.empty(num_bins, -(-chunk // 64) * 64)
        mel[:, chunk:] = 1.0
        cache = _scratch.buffers = (key, padded, mel)
    return cache[1], cache[2]


def _emphasis_buffer(length: int) -> Tensor:
    """A float32 buffer of ``length`` samples: this thread's reused one when it is small enough."""
    if length > SCRATCH_LIMIT:
        return torch.empty(length)
    name = "emphasis_inference" if torch.is_inference_mode_enabled() else "emphasis"  # see _scratch_buffers
    buffer = getattr(_scratch, name, None)
    if buffer is None or buffer.shape[0] < length:
        buffer = torch.empty(max(length, 1 << 16))
        setattr(_scratch, name, buffer)
    return buffer[:length]


def log_mel_chunks(signal: Tensor, count: int, *, sample_rate: int, window: int, shift: int, fft_size: int,
                   num_bins: int, low_freq: float, high_freq: float,
                   preemphasis: float) -> Iterator[tuple[int, Tensor]]:
    """Log-mel energies of the frames ``signal[g shift: g shift + window]``, ``g < count``, chunk by chunk:
    yields ``(first, energies)`` with ``energies`` ``(num_bins, n)`` for frames ``first .. first + n - 1``.

    ``energies`` is a view of a per-thread scratch buffer, overwritten by the next chunk (and by any later
    call in the same thread): copy what you keep before advancing. See :func:`log_mel_frames` for the method.
    """
    if count == 0:
        return
    taper, taper_first = hann_window(window), _hann_first(window)
    # Two exactly rounded ops, not one ``sub(alpha=)``: its vector path may fuse multiply-add and its scalar
    # tail does not, and a sample's value must not depend on where it lands in the batch.
    emphasised = _emphasis_buffer(signal.shape[0])
    torch.sub(signal[1:], torch.mul(signal[:-1], preemphasis), out=emphasised[1:])
    emphasised[:1] = (1.0 - preemphasis) * signal[:1]
    frames = emphasised.unfold(0, window, shift)  # (>= count, window), no copy
    means = _frame_means(signal, window, shift, count)
    bands = mel_bands(num_bins, fft_size, sample_rate, low_freq, high_freq)
    # Equal chunks of at least MIN_MATMUL_FRAMES rows (BLAS takes other code paths for a handful of columns,
    # which round differently: a frame's value must not depend on the batch around it).
    chunk = max(-(-count // -(-count // CHUNK_FRAMES)), MIN_MATMUL_FRAMES)
    # The log runs on a contiguous buffer whose size is a multiple of 64, so every value takes the SIMD path
    # (a scalar remainder loop may round differently).
    padded, mel = _scratch_buffers(chunk, fft_size, window, num_bins)
    if count < chunk:
        padded[count:] = 0.0  # rows past the last frame (only when count < MIN_MATMUL_FRAMES)
    for first in range(0, count, chunk):
        n = min(chunk, count - first)
        head = padded[:n, :window]
        torch.mul(frames[first: first + n], taper, out=head)
        if taper_first != 0.0:  # a frame's first sample is (1 - a) x[start], not x[start] - a x[start - 1]
            head[:, 0] = signal[first * shift:: shift][:n] * ((1.0 - preemphasis) * taper_first)
        head.addr_(means[first: first + n], taper, alpha=-(1.0 - preemphasis))  # per-frame mean, windowed
        # |X|² in place as interleaved re², im² (the interleaved bank adds the pairs in the matmul); rows past
        # ``n`` in the last chunk hold earlier frames and are computed and dropped
        power = torch.view_as_real(torch.fft.rfft(padded)).square_().view(chunk, -1)
        for first_filter, stop_filter, lo, hi, weights in bands:
            if hi > lo:
                torch.matmul(weights, power[:, lo:hi].T, out=mel[first_filter:stop_filter, :chunk])
            else:
                mel[first_filter:stop_filter] = 0.0
        mel.clamp_min_(LOG_FLOOR).log_()
        yield first, mel[:, :n]


def normalise_into(out: Tensor, energies: Tensor, normalise: tuple[float, float] | None) -> None:
    """``out[:] = (energies - mean) / std`` (or a plain copy), as two exactly rounded passes."""
    if normalise is None:
        out.copy_(energies)
    else:
        torch.sub(energies, normalise[0], out=out).div_(normalise[1])


def log_mel_frames(signal: Tensor, count: int, *, sample_rate: int, window: int, shift: int, fft_size: int,
                   num_bins: int, low_freq: float, high_freq: float, preemphasis: float,
                   normalise: tuple[float, float] | None = None) -> Tensor:
    """Log-mel energies ``(num_bins, count)`` (mel-major, the images' layout) of the frames
    ``signal[g shift: g shift + window]``, ``g < count`` (possibly a view with padded rows).

    ``signal`` is 1-D float32 and should be roughly zero-mean (a large DC offset costs float32 precision in
    the pre-emphasis; it changes nothing else, as every frame loses its own mean). Kaldi removes each frame's
    mean ``m`` and then pre-emphasises; both are linear, so a frame equals ``p - (1 - a) m`` where ``p`` is the
    pre-emphasis of the *whole signal* cut into frames afterwards (its first sample being ``(1 - a) x[start]``,
    which the Hann window zeroes anyway). So the per-sample work is done once per signal, not once per
    overlapping frame; the windowed frames are written straight into a zero-padded FFT buffer, and FFT,
    |X|² and the banded mel matmul run over cache-sized chunks (:func:`log_mel_chunks`).
    """
    out = torch.empty(num_bins, count)
    for first, energies in log_mel_chunks(signal, count, sample_rate=sample_rate, window=window, shift=shift,
                                          fft_size=fft_size, num_bins=num_bins, low_freq=low_freq,
                                          high_freq=high_freq, preemphasis=preemphasis):
        normalise_into(out[:, first: first + energies.shape[1]], energies, normalise)
    return out


def pack_runs(runs: list[Tensor], window: int, shift: int) -> tuple[Tensor, list[int], int]:
    """Lay 1-D signals ("runs") end to end, each starting at a multiple of ``shift`` and centred on its mean,
    so that one framing of the packed signal contains every run's frames: run ``r``'s frame ``f`` is packed
    frame ``first[r] + f``. Returns ``(packed, first, count)``; frames straddling two runs are computed
    and ignored (at most ``ceil(window / shift) - 1`` per run). Zero-length gaps are filled with zeros."""
    lengths = [int(run.shape[-1]) for run in runs]
    positions, total = [], 0
    for length in lengths:
        positions.append(total)
        total += -(-length // shift) * shift if length >= window else 0
    packed = torch.empty(max(total, window))
    for run, length, position in zip(runs, lengths, positions, strict=True):
        if length >= window:
            torch.sub(run, run.mean(), out=packed[position: position + length])
            packed[position + length: position + -(-length // shift) * shift] = 0.0
    packed[total:] = 0.0
    count = num_frames(total, window, shift) if total else 0
    return packed, [p // shift for p in positions], count


def log_mel(signals: list[Tensor], *, sample_rate: int, window: int, shift: int, fft_size: int, num_bins: int,
            low_freq: float, high_freq: float, preemphasis: float,
            normalise: tuple[float, float] | None = None) -> list[Tensor]:
    """1-D float32 signals → each signal's log-mel energies ``(num_bins, frames_i)`` (mel-major views, the
    layout of the spectrogram images; 0 frames when shorter than one window), optionally normalised as
    ``(x - mean) / std`` with ``normalise=(mean, std)``. All signals go through one packed pass."""
    packed, first, count = pack_runs(signals, window, shift)
    energies = log_mel_frames(packed, count, sample_rate=sample_rate, window=window, shift=shift,
                              fft_size=fft_size, num_bins=num_bins, low_freq=low_freq, high_freq=high_freq,
                              preemphasis=preemphasis, normalise=normalise)
    return [energies[:, row: row + num_frames(signal.shape[-1], window, shift)]
            for row, signal in zip(first, signals, strict=True)]


__all__ = ["LOG_FLOOR", "hann_window", "log_mel", "log_mel_chunks", "log_mel_frames", "mel_bands", "mel_filterbank",
           "mel_scale", "normalise_into", "num_frames", "pack_runs"]
