"""Depth and thermal: preprocessing latency per item and embedding throughput at ImageBind's sizes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_depth_thermal.py [--threads 1] [--batch 4] [--device cpu]

Preprocessing: a 640×480 16-bit millimetre PNG with 5% invalid pixels (default pipeline: in-fill,
disparity, resize/crop, Omnivore normalisation) and a 640×512 8-bit thermal PNG, each → 224×224.
Embedding: random-weight encoders at ImageBind's sizes (depth ViT-S/16, thermal ViT-B/16), eval mode.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from bind_depth import DepthModality
from bind_thermal import ThermalModality
from PIL import Image


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory() as tmp:
        depth_mm = rng.integers(500, 8000, size=(480, 640)).astype(np.uint16)
        depth_mm[rng.random(depth_mm.shape) < 0.05] = 0
        depth_png = Path(tmp) / "depth.png"
        Image.fromarray(depth_mm).save(depth_png)
        thermal_png = Path(tmp) / "thermal.png"
        Image.fromarray(rng.integers(0, 256, size=(512, 640), dtype=np.uint8)).save(thermal_png)

        tiny = {"width": 16, "num_layers": 0, "num_heads": 1, "embed_dim": 8}  # preprocessing only
        depth_tiny, thermal_tiny = DepthModality(**tiny), ThermalModality(**tiny)
        print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"threads {args.threads}, device {args.device}")
        print(f"depth   preprocess 640x480 PNG -> 224: "
              f"{1e3 * timed(lambda: depth_tiny.preprocess([depth_png]), args.repeats):.1f} ms/item")
        print(f"thermal preprocess 640x512 PNG -> 224: "
              f"{1e3 * timed(lambda: thermal_tiny.preprocess([thermal_png]), args.repeats):.1f} ms/item")

    for name, cls in (("depth (ViT-S/16)", DepthModality), ("thermal (ViT-B/16)", ThermalModality)):
        model = cls().to(args.device).eval()
        x = torch.randn(args.batch, 1, 224, 224, device=args.device)

        def run(model: torch.nn.Module = model, x: torch.Tensor = x) -> None:
            with torch.no_grad():
                model(x)
            if x.is_cuda:
                torch.cuda.synchronize()

        seconds = timed(run, args.repeats)
        print(f"{name} embed batch {args.batch}: {seconds * 1e3:.0f} ms ({args.batch / seconds:.1f} items/s)")


if __name__ == "__main__":
    main()
