"""The frozen anchor's two forward paths side by side: bindcore's exact SDPA re-forward of open_clip's standard
towers (``FrozenAnchor.use_fast_path = True``) against open_clip's own forward (``False``), on the same weights and
inputs, interleaved in one process, under each GEMM backend of :mod:`bindcore.nn.linear`.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_anchor_paths.py --repeats 3

Model: open_clip ViT-H-14 with random weights (nothing downloaded; the cost is the same). Images: a batch of
``--images`` 224² images. Texts: ``--texts`` captions of 8–20 BPE tokens in 77-token rows. Median of ``--repeats``
timed calls after a warm-up; the last column is the largest difference between the paths' unit embeddings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def _median_seconds(call, repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-H-14")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from bindcore.anchor import load_anchor
    from bindcore.nn import linear as gemm

    print(f"CPU: {gemm.cpuinfo_field('model name') or 'unknown'}; torch CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; threads {torch.get_num_threads()}; "
          f"load {os.getloadavg()[0]:.1f}")
    anchor = load_anchor(model=args.model, pretrained=None)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, 3, *anchor.image_size, generator=generator)
    ids = torch.zeros(args.texts, anchor.context_length, dtype=torch.long)
    for row in range(args.texts):
        length = 8 + row % 13
        ids[row, 0] = 49406
        ids[row, 1:length + 1] = torch.randint(1, 49000, (length,), generator=generator)
        ids[row, length + 1] = 49407
    print("| backend | tower | open_clip forward (items/s) | SDPA path (items/s) | speed-up | max abs diff |")
    print("|---|---|---|---|---|---|")
    for backend in ("aten", "onednn"):
        gemm.set_backend(backend)
        for tower, encode, batch in (("image", anchor.encode_image, images), ("text", anchor.encode_text, ids)):
            seconds, outputs = {}, {}
            for _ in range(2):  # interleaved: each path twice, alternating
                for fast in (False, True):
                    anchor.use_fast_path = fast
                    taken = _median_seconds(lambda: encode(batch), args.repeats)  # noqa: B023
                    seconds[fast] = min(seconds.get(fast, float("inf")), taken)
                    outputs[fast] = encode(batch)
            diff = (outputs[True] - outputs[False]).abs().max().item()
            rate = {fast: len(batch) / seconds[fast] for fast in seconds}
            print(f"| {backend} | {tower} | {rate[False]:.2f} | {rate[True]:.2f} | {rate[True] / rate[False]:.2f}x "
                  f"| {diff:.1e} |", flush=True)
    anchor.use_fast_path = True
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
