"""One binding step on the paper's setup with and without cached anchor embeddings.

Anchor: open_clip ViT-H-14 with random weights (``pretrained=None``: nothing downloaded; the cost is the same).
Bound modality: the ``audio`` plugin at ImageBind's reference size (ViT-B 768/12/12, 128×204 log-mel, 1 clip).
Without the cache every step runs the frozen ViT-H image tower on the batch's images (no grad); with it the
step reads the images' embeddings from a memory-mapped file. Everything else (audio forward/backward, InfoNCE,
AdamW) is identical.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_train_cache.py --batch 4 --steps 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--anchor", default="ViT-H-14")
    args = parser.parse_args()

    import bindcore
    from bindcore.anchor import load_anchor
    from bindcore.loss import InfoNCE
    from bindcore.train.cache import AnchorCache

    torch.manual_seed(0)
    started = time.perf_counter()
    anchor = load_anchor(model=args.anchor, pretrained=None)  # the trainer's frozen anchor, random weights
    print(f"built {args.anchor} (random weights) in {time.perf_counter() - started:.1f}s")
    audio = bindcore.modality("audio", clips_per_item=1, embed_dim=anchor.embed_dim)
    optimizer = torch.optim.AdamW(audio.parameters(), lr=1e-4, betas=(0.9, 0.95))
    batch = args.batch
    images = torch.randn(batch, 3, 224, 224)
    spectrograms = torch.randn(batch, 1, 1, audio.config.num_mel_bins, audio.config.target_length)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "anchor.npy"
        cached = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(batch, anchor.embed_dim))
        cached[:] = anchor.encode_image(images).numpy()
        cached.flush()
        cache = AnchorCache(path)
        loss_fn = InfoNCE(0.05)  # the trainer's loss

        def step(use_cache: bool) -> float:
            t0 = time.perf_counter()
            targets = cache.rows(np.arange(batch)) if use_cache else anchor.encode_image(images)
            loss = loss_fn(audio(spectrograms), targets).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return time.perf_counter() - t0

        results = {}
        for use_cache in (False, True):
            step(use_cache)  # warm-up
            times = [step(use_cache) for _ in range(args.steps)]
            results[use_cache] = statistics.median(times)
            label = "cached anchor embeddings" if use_cache else "anchor forward every step"
            print(f"{label:<28} median step {results[use_cache]:.3f}s over {args.steps} steps (batch {batch})")
    print(f"speed-up with the cache: {results[False] / results[True]:.2f}x")


if __name__ == "__main__":
    main()
