"""Audio preprocessing throughput: bind-audio's ``preprocess`` vs a re-implementation of the reference
ImageBind loader's algorithm (``imagebind/data.py::load_and_transform_audio_data``; the reference code is
not available here, so the baseline below follows its documented steps, see the shared spec §3.3):

    per file: decode the whole file → resample every channel of the whole file (torchaudio) →
    per clip, in a Python loop: slice, subtract the clip mean in place, Kaldi fbank (torchaudio),
    pad/cut to 204 frames, normalise → stack.

bind-audio instead reads only the frames its clips need (plain PCM16 WAVs with ``os.pread``, others with
soundfile), resamples one channel once per (merged) window, computes frames shared by clips once, and runs
packed framing + FFT + banded mel matmul over the frames of groups of files, in inference mode with
per-thread scratch buffers.

Usage (single-threaded, as in BENCHMARKS.md):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_audio.py [--files 32] [--repeats 5] [--hour]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from bind_audio import AudioConfig
from bind_audio.preprocess import preprocess

REPO_ROOT = Path(__file__).resolve().parents[1]


def reference_style_loader(paths: list[Path], num_mel_bins: int = 128, target_length: int = 204,
                           sample_rate: int = 16000, clip_duration: float = 2.0, clips_per_video: int = 3,
                           mean: float = -4.268, std: float = 9.138) -> torch.Tensor:
    """The reference loader's algorithm, step by step (re-implemented; torchaudio for resample and fbank)."""
    import torchaudio.compliance.kaldi as kaldi
    import torchaudio.functional as audio_functional

    outputs = []
    for path in paths:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)  # whole file
        waveform = torch.from_numpy(data.T.copy())
        if rate != sample_rate:
            waveform = audio_functional.resample(waveform, orig_freq=rate, new_freq=sample_rate)
        duration = waveform.shape[1] / sample_rate
        step = Fraction(max(duration - clip_duration, 0)) / max(clips_per_video - 1, 1)
        clips = []
        for k in range(clips_per_video):
            start = k * step
            clip = waveform[:, int(start * sample_rate): int((start + Fraction(clip_duration)) * sample_rate)]
            clip -= clip.mean()  # in place on a view, as the reference
            fbank = kaldi.fbank(clip, htk_compat=True, sample_frequency=sample_rate, use_energy=False,
                                window_type="hanning", num_mel_bins=num_mel_bins, dither=0.0, frame_length=25,
                                frame_shift=10).transpose(0, 1)
            pad = target_length - fbank.shape[1]
            fbank = torch.nn.functional.pad(fbank, (0, pad)) if pad > 0 else fbank[:, :target_length]
            clips.append(((fbank.unsqueeze(0)) - mean) / std)
        outputs.append(torch.stack(clips))
    return torch.stack(outputs)


def write_clips(folder: Path, count: int, seconds: float, rate: int, channels: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        n = int(seconds * rate)
        t = np.arange(n) / rate
        signal = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t)[None] + 0.05 * rng.standard_normal((channels, n))
        path = folder / f"clip_{rate}_{channels}ch_{index:03d}.wav"
        sf.write(str(path), signal.T.astype(np.float32), rate, subtype="PCM_16")
        paths.append(path)
    return paths


def measure(name: str, paths: list[Path], repeats: int) -> dict:
    """Files/s of each loader on ``paths``. The three loaders run interleaved, ``repeats`` rounds, and the
    best round of each counts, so that load from other processes on a shared machine hits them alike."""
    config = AudioConfig()
    loaders = {
        "reference_style": lambda: reference_style_loader(paths),
        "ours_single": lambda: [preprocess([p], config) for p in paths],
        "ours_batched": lambda: preprocess(paths, config),
    }
    ours, baseline = preprocess(paths, config), reference_style_loader(paths)  # also warms caches
    times: dict[str, list[float]] = {key: [] for key in loaders}
    for _ in range(repeats):
        for key, loader in loaders.items():
            start = time.perf_counter()
            loader()
            times[key].append(time.perf_counter() - start)
    best = {key: min(values) for key, values in times.items()}
    n = len(paths)
    return {
        "set": name, "files": n,
        "reference_style_files_per_s": n / best["reference_style"],
        "ours_one_file_per_call_files_per_s": n / best["ours_single"],
        "ours_batched_files_per_s": n / best["ours_batched"],
        "speedup_one_file_per_call": best["reference_style"] / best["ours_single"],
        "speedup_batched": best["reference_style"] / best["ours_batched"],
        "median_s": {key: statistics.median(values) for key, values in times.items()},
        "max_abs_diff_vs_reference_style": float((ours - baseline).abs().max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=32, help="10 s clips per synthetic set")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--hour", action="store_true", help="also time a 1-hour 16 kHz file (writes 115 MB)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    vectors = Path(os.environ.get("BINDCORE_PARITY_DIR") or REPO_ROOT.parent / "shared" / "imagebind_vectors")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if (vectors / "fixtures").is_dir():
            files = sorted((vectors / "fixtures" / "audio").glob("*.wav")) + sorted(
                (vectors / "fixtures" / "assets").glob("*.wav"))
            results.append(measure("ImageBind vectors' audio files (11 wav, 8-44.1 kHz, 0.5-12 s)", files,
                                   args.repeats))
        else:
            print(f"no parity vectors at {vectors}; skipping that set", file=sys.stderr)
        results.append(measure(f"{args.files} x 10 s, 44.1 kHz stereo PCM16",
                               write_clips(folder, args.files, 10.0, 44100, 2), args.repeats))
        results.append(measure(f"{args.files} x 10 s, 16 kHz mono PCM16",
                               write_clips(folder, args.files, 10.0, 16000, 1), args.repeats))
        if args.hour:
            results.append(measure("1 x 1 hour, 16 kHz mono PCM16", write_clips(folder, 1, 3600.0, 16000, 1), 2))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    print("| set | reference-style files/s | ours, 1 file/call | ours, batched | speed-up 1/call | speed-up batched "
          "| max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['set']} | {r['reference_style_files_per_s']:.1f} | {r['ours_one_file_per_call_files_per_s']:.1f} "
              f"| {r['ours_batched_files_per_s']:.1f} | {r['speedup_one_file_per_call']:.1f}x "
              f"| {r['speedup_batched']:.1f}x | {r['max_abs_diff_vs_reference_style']:.2g} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
