"""GFLOP/s of the trunks' linear layers: ``F.linear`` (PyTorch's BLAS, MKL on x86 wheels) versus
``bindcore.nn.linear`` (oneDNN), on the shapes ImageBind-huge's towers run at batch 2.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gemm.py [--repeats 10]

Prints the CPU model and a markdown table; both paths are fp32 and the last column is their largest
difference relative to a float64 product.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from bindcore.nn import linear as fast

# (what, tokens M, in K, out N): batch 2 of each tower's sequence, qkv / MLP in / MLP out
SHAPES = [
    ("vision qkv (1280, 257 tok)", 514, 1280, 3840),
    ("vision mlp.fc1", 514, 1280, 5120),
    ("vision mlp.fc2", 514, 5120, 1280),
    ("audio/thermal qkv (768, 229 tok)", 1374, 768, 2304),
    ("audio/thermal mlp.fc1", 1374, 768, 3072),
    ("depth mlp.fc1 (384, 197 tok)", 394, 384, 1536),
]


def _seconds(fn, args: tuple, repeats: int) -> float:
    fn(*args)
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def cpu_model() -> str:
    return fast.cpuinfo_field("model name") or platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"{cpu_model()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("| shape | M × K × N | F.linear (GFLOP/s) | bindcore.nn.linear (GFLOP/s) | ratio "
          "| rel. error vs float64 (F.linear / ours) |")
    print("|---|---|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for what, m, k, n in SHAPES:
            x = torch.randn(m, k, generator=generator)
            weight = torch.randn(n, k, generator=generator) * k**-0.5
            bias = torch.randn(n, generator=generator)
            flops = 2 * m * k * n
            aten = _seconds(F.linear, (x, weight, bias), args.repeats)
            ours = _seconds(fast.linear, (x, weight, bias), args.repeats)
            exact = F.linear(x.double(), weight.double(), bias.double())
            scale = exact.abs().max().item()
            errors = [(f(x, weight, bias).double() - exact).abs().max().item() / scale for f in (F.linear, fast.linear)]
            print(f"| {what} | {m} × {k} × {n} | {flops / aten / 1e9:.0f} | {flops / ours / 1e9:.0f} | "
                  f"{aten / ours:.2f}× | {errors[0]:.1e} / {errors[1]:.1e} |")
    if not fast.uses_onednn(torch.ones(2, 2), torch.ones(2, 2)):
        print("note: bindcore.nn.linear fell back to F.linear here (no oneDNN, or BINDCORE_CPU_LINEAR=aten)")


if __name__ == "__main__":
    main()
