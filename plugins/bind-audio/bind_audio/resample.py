"""Band-limited (windowed-sinc) resampling of any output sample range, read from any input range.

The filter is ``torchaudio.functional.resample``'s default (``sinc_interp_hann``, 6 zero crossings,
rolloff 0.99), evaluated in float32 in the same order of operations, so the weights are the same
numbers: with rates reduced by their gcd, output ``j = q * new + p`` is
``sum_i x[i] * h(-p / new + (i - q * orig) / orig)``, ``h`` a Hann-windowed sinc scaled by ``base = min(orig, new)
* rolloff`` and zero beyond ``width`` zero crossings; ``x`` is zero outside the signal.

Because ``j`` is an absolute index, any window of the output can be computed from just the input frames
it touches, which lets long files be read clip by clip instead of decoded whole. Two evaluations:

* ``polyphase``: the polyphase kernel ``(new, orig + 2 reach)`` applied to every block of ``orig`` inputs
  (a matmul over a strided view, or torchaudio's strided ``conv1d`` when there are few phases); used when
  that kernel is small, i.e. for the usual rate pairs.
* ``gather``: per output only the ``~2 reach`` taps that can be non-zero, tabulated per phase and applied
  with one gather + multiply-sum (used for awkward rate pairs such as 44 101 → 16 000 Hz, whose
  polyphase kernel would have hundreds of millions of entries).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

POLYPHASE_KERNEL_LIMIT = 2_000_000  # polyphase kernel entries above which the gather path is used
GATHER_BLOCK = 65536  # outputs per step of the gather path
MATMUL_MIN_PHASES = 4  # from this many output phases on, the polyphase kernel is applied as a matmul


def _reduced(orig: int, new: int) -> tuple[int, int]:
    g = math.gcd(orig, new)
    return orig // g, new // g


def _reach(orig: int, new: int, width: int, rolloff: float) -> int:
    """Half-width of the kernel in input frames (torchaudio's ``width``)."""
    return math.ceil(width * orig / (min(orig, new) * rolloff))


def _weights(rel: Tensor, orig: int, new: int, width: int, rolloff: float) -> Tensor:
    """Kernel weights for phases ``0..new-1`` (rows) at input offsets ``rel = i - q * orig`` (int64)."""
    base = min(orig, new) * rolloff
    reach = _reach(orig, new, width, rolloff)
    t = torch.arange(0, -new, -1, dtype=torch.float32)[:, None] / new + rel.to(torch.float32) / orig
    t *= base
    t = t.clamp_(-width, width)
    window = torch.cos(t * math.pi / width / 2) ** 2
    t *= math.pi
    weights = torch.where(t == 0, torch.tensor(1.0), t.sin() / t)
    weights *= window * (base / orig)
    # The reference kernel spans offsets [-reach, reach + orig) only; outside it is exactly zero.
    return weights.masked_fill_((rel < -reach) | (rel >= reach + orig), 0.0)


@lru_cache(maxsize=16)
def _polyphase_kernel(orig: int, new: int, width: int, rolloff: float) -> Tensor:
    reach = _reach(orig, new, width, rolloff)
    rel = torch.arange(-reach, reach + orig)[None, :].expand(new, -1)
    return _weights(rel, orig, new, width, rolloff)  # (new, orig + 2 reach)


@lru_cache(maxsize=16)
def _phase_table(orig: int, new: int, width: int, rolloff: float) -> tuple[Tensor, int]:
    """``(new, 2 half + 1)`` weights; tap ``k`` of output ``j`` reads input ``floor(j orig / new) + k - half``."""
    half = _reach(orig, new, width, rolloff) + 1
    phases = torch.arange(new, dtype=torch.int64)
    rel = ((phases * orig) // new)[:, None] + torch.arange(-half, half + 1)[None, :]
    return _weights(rel, orig, new, width, rolloff), half


def resampled_length(num_frames: int, orig: int, new: int) -> int:
    """``ceil(num_frames * new / orig)``, exactly (torchaudio evaluates it in float32)."""
    return -(-num_frames * new // orig)


def _uses_polyphase(orig_r: int, new_r: int, width: int, rolloff: float) -> bool:
    return new_r * (orig_r + 2 * _reach(orig_r, new_r, width, rolloff)) <= POLYPHASE_KERNEL_LIMIT


def input_range(out_start: int, out_stop: int, orig: int, new: int, width: int = 6,
                rolloff: float = 0.99) -> tuple[int, int]:
    """Input frames ``[start, stop)`` that outputs ``[out_start, out_stop)`` read (may reach past the signal)."""
    if orig == new:
        return out_start, out_stop
    orig_r, new_r = _reduced(orig, new)
    if _uses_polyphase(orig_r, new_r, width, rolloff):
        reach = _reach(orig_r, new_r, width, rolloff)
        first_block, last_block = out_start // new_r, (out_stop - 1) // new_r
        return first_block * orig_r - reach, (last_block + 1) * orig_r + reach
    half = _reach(orig_r, new_r, width, rolloff) + 1
    return (out_start * orig_r) // new_r - half, ((out_stop - 1) * orig_r) // new_r + half + 1


def resample_range(x: Tensor, x_start: int, num_frames: int, out_start: int, out_stop: int, orig: int, new: int,
                   width: int = 6, rolloff: float = 0.99) -> Tensor:
    """Outputs ``[out_start, out_stop)`` of resampling a ``num_frames``-long signal from ``orig`` to ``new`` Hz.

    ``x`` (``(..., L)`` float) holds the signal's frames ``[x_start, x_start + L)`` and must cover
    :func:`input_range` clipped to ``[0, num_frames)``.
    """
    if orig == new:
        return x[..., out_start - x_start: out_stop - x_start]
    orig_r, new_r = _reduced(orig, new)
    lo, hi = input_range(out_start, out_stop, orig, new, width, rolloff)
    have_lo, have_hi = x_start, x_start + x.shape[-1]
    need_lo, need_hi = max(lo, 0), min(hi, num_frames)
    if have_lo > need_lo or have_hi < need_hi:
        raise ValueError(f"input frames [{have_lo}, {have_hi}) do not cover [{need_lo}, {need_hi})")
    # Beyond the signal the reference pads with zeros; [lo, hi) becomes one contiguous padded buffer.
    x = F.pad(x[..., need_lo - x_start: need_hi - x_start], (need_lo - lo, hi - need_hi))
    lead = x.shape[:-1]
    x = x.reshape(-1, x.shape[-1])
    if _uses_polyphase(orig_r, new_r, width, rolloff):
        kernel = _polyphase_kernel(orig_r, new_r, width, rolloff).to(x.dtype)
        if new_r >= MATMUL_MIN_PHASES:
            # Each block of orig inputs (plus context) gives new outputs: one matmul over a strided view of
            # the blocks, several times faster than the equivalent strided conv1d.
            windows = x.unfold(-1, kernel.shape[1], orig_r)  # (B, blocks, taps), no copy
            out = (windows @ kernel.T).reshape(x.shape[0], -1)  # output j = block * new + phase
        else:  # few phases (e.g. 48 -> 16 kHz is 3 -> 1): the conv is the faster of the two
            blocks = F.conv1d(x[:, None], kernel[:, None, :], stride=orig_r)  # (B, new, blocks)
            out = blocks.transpose(1, 2).reshape(x.shape[0], -1)
        skip = out_start - (out_start // new_r) * new_r
        out = out[:, skip: skip + out_stop - out_start]
    else:
        table, half = _phase_table(orig_r, new_r, width, rolloff)
        taps = torch.arange(2 * half + 1)[None, :]
        pieces = []
        for first in range(out_start, out_stop, GATHER_BLOCK):  # blocks bound the (outputs, taps) temporaries
            j = torch.arange(first, min(first + GATHER_BLOCK, out_stop), dtype=torch.int64)
            index = ((j * orig_r) // new_r - half - lo)[:, None] + taps
            pieces.append((x[:, index] * table[j % new_r].to(x.dtype)).sum(-1))
        out = torch.cat(pieces, dim=-1)
    return out.reshape(*lead, out_stop - out_start)
