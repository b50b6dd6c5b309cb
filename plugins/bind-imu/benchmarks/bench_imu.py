"""Throughput of IMU preprocessing and embedding on the CPU at ImageBind-huge sizes.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python plugins/bind-imu/benchmarks/bench_imu.py [--items 8] [--threads 1]``.
Prints one line per stage (items per second). Results belong in BENCHMARKS.md, never in tests.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from bind_imu import ImuModality, ImuRecording


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="recording length")
    parser.add_argument("--rate", type=float, default=200.0, help="recording sample rate (Hz)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    items = [ImuRecording(rng.standard_normal((6, int(args.seconds * args.rate))).astype(np.float32), args.rate)
             for _ in range(args.items)]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {args.threads}; {args.items} recordings of {args.seconds} s at {args.rate} Hz")
    for windows in (1, 3):
        model = ImuModality(num_windows=windows).eval()
        batch = model.preprocess(items)
        pre = _timed(lambda model=model: model.preprocess(items), args.repeats)
        with torch.no_grad():
            fwd = _timed(lambda model=model, batch=batch: model(batch), args.repeats)
        print(f"num_windows={windows}: preprocess {args.items / pre:8.1f} items/s   "
              f"encode+project {args.items / fwd:6.2f} items/s ({args.items * windows / fwd:6.2f} windows/s)")


if __name__ == "__main__":
    main()
