"""Raw audio inputs → normalised log-mel clips ``(N, clips, 1, num_mel_bins, target_length)``.

Per input: resampled length ``L = ceil(frames * rate / input_rate)``; ``clips_per_item`` windows of
``clip_duration`` placed evenly over it (ImageBind's pinned pytorchvideo sampler, see
:func:`clip_windows`); only the input frames those windows need are read and resampled (overlapping
windows are merged, so a short file is read and resampled once). Clips on a common frame grid share
their frames (:func:`load_runs`; the reference's in-place mean, which leaks between overlapping clips, is
not reproduced), then the frames of all inputs go through the Kaldi filterbank in one packed pass
(:func:`bind_audio.fbank.log_mel_chunks`) and are cut/padded into the clip images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bind_audio.config import AudioConfig
from bind_audio.fbank import log_mel_chunks, normalise_into, num_frames, pack_runs
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


ClipFrames = tuple[int, int, int]  # (run index, first frame of the clip within the run, frames of the clip)


def load_runs(source: AudioSource, config: AudioConfig) -> tuple[list[Tensor], list[ClipFrames]]:
    """The mono signal pieces ("runs", float32 at ``config.sample_rate``) whose analysis frames cover the
    ``clips_per_item`` clips of one input, and where each clip's frames are in them.

    A frame's log-mel depends only on the samples under it (Kaldi removes each frame's own mean, and the
    Hann window zeroes the one sample pre-emphasis would take from before the frame), not on which clip it
    belongs to or on that clip's mean. So clips whose frames fall on the same sample grid share them: equal
    clips (inputs no longer than a clip) are computed once, overlapping clips on a common grid as the
    union of their frames. The reference's in-place clip mean, which leaks between overlapping clips, is
    not reproduced (see the README).
    """
    rate, target = source.sample_rate, config.sample_rate
    if rate > config.max_sample_rate:  # before the resampler sizes its tables by the rate
        raise InputError(source.item, f"sample rate {rate} Hz exceeds max_sample_rate={config.max_sample_rate}",
                         fix="resample the file first, or raise max_sample_rate if the rate is genuine")
    window, shift = config.window_samples, config.shift_samples
    length = resampled_length(source.num_frames, rate, target)
    if length < window:
        raise InputError(source.item, f"audio is too short: {source.num_frames} frames at {rate} Hz, less than one "
                         f"{config.frame_length_ms:g} ms analysis window", fix="pass a longer recording")
    windows = clip_windows(length, target, config.clip_duration, config.clips_per_item)
    runs: list[Tensor] = []
    placements: list[ClipFrames | None] = [None] * len(windows)
    segments = _merge(windows, gap=window)
    needs = []
    for seg_start, seg_stop in segments:
        lo, hi = input_range(seg_start, seg_stop, rate, target, config.resample_lowpass_width, config.resample_rolloff)
        needs.append((max(lo, 0), min(hi, source.num_frames)))
    # One read when the segments' input ranges nearly touch (each read has a fixed cost); separate reads
    # otherwise: converting samples no clip uses costs more, and a long file is never decoded whole.
    span_lo, span_hi = needs[0][0], max(hi for _, hi in needs)
    block = (span_lo, source.read_mono(span_lo, span_hi, config.channel)) \
        if 4 * (span_hi - span_lo) <= 5 * sum(hi - lo for lo, hi in needs) else None
    for (seg_start, seg_stop), (lo, hi) in zip(segments, needs, strict=True):
        mono = block[1][lo - block[0]: hi - block[0]] if block else source.read_mono(lo, hi, config.channel)
        if not np.isfinite(mono).all():
            bad = int(np.flatnonzero(~np.isfinite(mono))[0])
            raise InputError(source.item, f"sample {lo + bad} is {mono[bad]!r}",
                             fix="remove NaN/Inf samples before embedding")
        segment = resample_range(torch.from_numpy(mono), lo, source.num_frames, seg_start, seg_stop, rate, target,
                                 config.resample_lowpass_width, config.resample_rolloff)
        # Clips of this segment by frame grid (start mod shift); on one grid, union their frame ranges.
        grids: dict[int, list[tuple[int, int, int]]] = {}
        for index, (start, stop) in enumerate(windows):
            if seg_start <= start and stop <= seg_stop:
                offset = start - seg_start
                grids.setdefault(offset % shift, []).append((offset // shift, num_frames(stop - start, window, shift),
                                                            index))
        for phase, members in grids.items():
            members.sort()
            bridge = -(-window // shift)  # computing a short gap's frames costs no more than a new run
            merged: list[list[Any]] = []
            for first_frame, count, index in members:
                if merged and first_frame <= merged[-1][1] + bridge:
                    merged[-1][1] = max(merged[-1][1], first_frame + count)
                    merged[-1][2].append((first_frame, count, index))
                else:
                    merged.append([first_frame, first_frame + count, [(first_frame, count, index)]])
            for run_first, run_stop, clips in merged:
                if run_stop > run_first:
                    begin = phase + run_first * shift
                    runs.append(segment[begin: begin + (run_stop - run_first - 1) * shift + window])
                for first_frame, count, index in clips:
                    placements[index] = (len(runs) - 1, first_frame - run_first, count)
    return runs, [p if p is not None else (0, 0, 0) for p in placements]


GROUP_FRAMES = 2048  # frames of consecutive inputs processed together: big passes, cache-sized buffers


def _images_into(out: Tensor, runs: list[Tensor], placements: list[ClipFrames], config: AudioConfig) -> None:
    """Runs + each clip's frames in them → normalised log-mel images written to ``out`` ``(clips, F, T)``.

    Each chunk of log-mel frames is normalised straight into the clip images it overlaps (no intermediate
    ``(F, frames)`` array, no second pass over it)."""
    window, shift = config.window_samples, config.shift_samples
    packed, first_rows, count = pack_runs(runs, window, shift)
    target = config.target_length
    pad = float((np.float32(config.pad_value) - np.float32(config.mean)) / np.float32(config.std))  # as float32
    spans = []  # (index, first packed row, rows kept): long clips are cut, short ones right-padded
    for index, (run, offset, frames) in enumerate(placements):
        keep = min(frames, target)
        spans.append((index, first_rows[run] + offset if keep else 0, keep))
        if keep < target:
            out[index, :, keep:] = pad
    normalise = (config.mean, config.std)
    for first, energies in log_mel_chunks(packed, count, sample_rate=config.sample_rate, window=window, shift=shift,
                                          fft_size=config.fft_size, num_bins=config.num_mel_bins,
                                          low_freq=config.low_freq, high_freq=config.mel_high_freq,
                                          preemphasis=config.preemphasis):
        stop = first + energies.shape[1]
        for index, row, keep in spans:
            lo, hi = max(row, first), min(row + keep, stop)
            if lo < hi:
                normalise_into(out[index, :, lo - row: hi - row], energies[:, lo - first: hi - first], normalise)


def spectrograms(clips: list[Tensor], config: AudioConfig) -> Tensor:
    """Mono clips → normalised log-mel images ``(len(clips), 1, num_mel_bins, target_length)``, batched."""
    placements = [(index, 0, num_frames(clip.shape[-1], config.window_samples, config.shift_samples))
                  for index, clip in enumerate(clips)]
    out = torch.empty(len(clips), *config.input_size)
    _images_into(out, list(clips), placements, config)
    return out.unsqueeze(1)


def _fill(flat: Tensor, inputs: Sequence[Any], config: AudioConfig) -> None:
    """Write each input's clip images into ``flat`` ``(N * clips, F, T)``, in groups of ~``GROUP_FRAMES`` frames."""
    clips = config.clips_per_item
    runs: list[Tensor] = []
    placements: list[ClipFrames] = []
    group_start = group_frames = 0
    for position, item in enumerate(inputs):
        with open_source(item) as source:
            item_runs, item_placements = load_runs(source, config)
        placements.extend((len(runs) + run, offset, count) for run, offset, count in item_placements)
        runs.extend(item_runs)
        group_frames += sum(num_frames(run.shape[-1], config.window_samples, config.shift_samples) for run in item_runs)
        if group_frames >= GROUP_FRAMES or position == len(inputs) - 1:
            _images_into(flat[group_start * clips: (position + 1) * clips], runs, placements, config)
            runs, placements, group_start, group_frames = [], [], position + 1, 0


def preprocess(inputs: Sequence[Any], config: AudioConfig) -> Tensor:
    """Raw inputs (paths, :class:`~bind_audio.AudioArray`, ``(samples, rate)`` tuples) → ``(N, clips, 1, F, T)``.

    Inputs are processed in groups of about ``GROUP_FRAMES`` analysis frames, straight into the output, so
    temporary memory stays bounded however many inputs are passed.
    """
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
        raise InputError(inputs, "preprocess takes a sequence of inputs", fix="wrap a single input in a list")
    clips = config.clips_per_item
    images = torch.empty(len(inputs), clips, 1, *config.input_size)
    # Inference mode skips autograd's per-op bookkeeping (~100 small ops per call: a tenth of a one-file
    # call). ``images`` is made outside it, so callers get an ordinary tensor that autograd may save.
    with torch.inference_mode():
        _fill(images.view(len(inputs) * clips, *config.input_size), inputs, config)
    if torch.isfinite(images.sum()):  # one cheap reduction; any Inf/NaN cell would make the sum non-finite
        return images
    finite = torch.isfinite(images).flatten(1).all(dim=1)
    if not finite.all():  # e.g. samples around 1e20: their power overflows float32
        raise InputError(inputs[int((~finite).nonzero()[0])], "its log-mel spectrogram overflows float32",
                         fix="scale the samples to the usual [-1, 1] range")
    return images
