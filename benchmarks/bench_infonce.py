"""Peak memory and time of InfoNCE forward + backward: plain path vs chunked path.

Each measurement runs in a fresh subprocess so that the process's peak resident set (``ru_maxrss``) belongs to
that measurement alone. Peak extra memory = peak RSS during forward+backward minus RSS after the inputs exist
(on CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the step). The children run with a
fixed glibc mmap threshold so that freed large tensors leave the RSS at once.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_infonce.py                     # default sizes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_infonce.py --sizes 2048x256 --chunk-size 256

Prints one markdown table row per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

DEFAULT_SIZES = ("4096x512", "16384x1024")


def _rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure(batch: int, dim: int, chunk_size: int | None, device: str, repeats: int, threads: int) -> dict:
    """Run in the child: time and peak extra memory of forward + backward."""
    import torch

    from bindcore.loss import info_nce

    torch.set_num_threads(threads)
    # Warm up on a tiny batch (same path) so one-off costs (kernel libraries, autograd threads, allocator pools)
    # are neither timed nor counted, without raising the RSS high-water mark.
    small = torch.randn(64, dim, device=device, requires_grad=True)
    info_nce(small, small.detach() + 1, 0.07, chunk_size=None if chunk_size is None else 16).backward()
    g = torch.Generator().manual_seed(0)
    a = torch.randn(batch, dim, generator=g).to(device).requires_grad_()
    b = torch.randn(batch, dim, generator=g).to(device).requires_grad_()
    tau = torch.tensor(0.07, device=device, requires_grad=True)

    def step() -> float:
        a.grad = b.grad = tau.grad = None
        loss = info_nce(a, b, tau, chunk_size=chunk_size)
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return float(loss)

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_bytes()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak_extra = torch.cuda.max_memory_allocated() - base
    else:
        peak_extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"loss": loss, "seconds": min(times), "peak_extra_bytes": peak_extra}


def _run_child(args: argparse.Namespace, batch: int, dim: int, chunk_size: int | None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        json.dumps({"batch": batch, "dim": dim, "chunk_size": chunk_size}),
        "--device",
        args.device,
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
    ]
    # A fixed mmap threshold makes glibc return every large block to the OS when freed, so the RSS high-water mark
    # tracks live tensors instead of heap fragmentation (the default threshold adapts upwards after frees).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="BATCHxDIM")
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--device", default="cuda" if _cuda_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-plain-above", type=int, default=None, help="skip the plain path above this batch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        spec = json.loads(args.child)
        print(
            json.dumps(
                _measure(spec["batch"], spec["dim"], spec["chunk_size"], args.device, args.repeats, args.threads)
            )
        )
        return

    print(f"device={args.device} threads={args.threads} repeats={args.repeats} (time: best of repeats)")
    print("| batch × dim | path | fwd+bwd time (s) | peak extra memory (MiB) | one fp32 logit matrix (MiB) | loss |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        batch, dim = (int(v) for v in size.lower().split("x"))
        full_logits_mib = batch * batch * 4 / 2**20
        paths: list[int | None] = [args.chunk_size]
        if args.skip_plain_above is None or batch <= args.skip_plain_above:
            paths.insert(0, None)
        for chunk_size in paths:
            result = _run_child(args, batch, dim, chunk_size)
            name = "plain" if chunk_size is None else f"chunked ({chunk_size} rows)"
            print(
                f"| {batch} × {dim} | {name} | {result['seconds']:.2f} | {result['peak_extra_bytes'] / 2**20:.0f} "
                f"| {full_logits_mib:.0f} | {result['loss']:.6f} |",
                flush=True,
            )


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    main()
