"""The paper's audio binding step, three ways: samples/s and model FLOP utilisation (MFU).

Bound modality: the ``audio`` plugin at ImageBind's size (ViT-B 768/12/12, 128×204 log-mel, one clip) trained with
the trainer's own step (:func:`bindcore.train.step.bind_step`: InfoNCE, clipping, AdamW, no host sync). Anchor:
open_clip ViT-H-14 with random weights (``pretrained=None``; same cost as the real one). The anchor's targets come

* ``recompute``: from the frozen ViT-H image tower on the batch's 224 px RandomResizedCrops, every step (the crops
  themselves are the DataLoader's work and are not timed);
* ``plain-cache``: from a memory-mapped float32 ``.npy`` (``anchor.cache_embeddings: true``; no image_crop);
* ``views-cache``: from the augmented cache (``{views: K}``): a seeded draw of one of K fp16 views per item, read
  with its crop box. The cached rows are random unit vectors (what they hold does not change the step's cost).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one step of each mode (matmuls, attention,
convolutions: forward and backward of the audio encoder, plus the anchor's forward when recomputed; on CPU the
attention kernel is not in the counter's table, ~5% of a ViT-B step at 228 tokens, so CPU MFU reads a little low).
MFU = FLOPs / median step time / peak. Peak on CPU: threads × FP32 FLOPs per cycle × clock (/proc/cpuinfo),
where a core with AVX-512 FMA is assumed to retire 2 × 16-lane FMAs per cycle (64 FLOP/cycle, Zen 5 / Sapphire
Rapids class) and one without 32 (2 × AVX2 FMA); on CUDA the H100/H200 dense bf16 peak, 989 TFLOP/s.
``--peak-tflops`` overrides either.

    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 python benchmarks/bench_train_step.py --batch 2 --anchor-layers 8 --steps 3
    OMP_NUM_THREADS=2 HF_HUB_OFFLINE=1 python benchmarks/bench_train_step.py --batch 4 --steps 3    # paper shapes
    python benchmarks/bench_train_step.py --device cuda --batch 256 --steps 20 --compile --json OUT/step.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MODES = ("recompute", "plain-cache", "views-cache")
H100_BF16_DENSE_TFLOPS = 989.0


def audio_modality(**config: Any) -> Any:
    """The ``audio`` plugin's modality, also where the plugin is not pip-installed (a bare copy of the tree)."""
    import bindcore

    try:
        return bindcore.modality("audio", **config)
    except Exception:  # not installed: register the tree's copy of the plugin by hand
        sys.path.insert(0, str(ROOT / "plugins" / "bind-audio"))
        import bind_audio

        from bindcore.plugins import Registry, set_registry

        registry = Registry(load_entry_points=False)
        registry.add_plugin(bind_audio, name="bind-audio")
        set_registry(registry)
        return bindcore.modality("audio", **config)


def cpu_peak_flops(threads: int) -> tuple[float, str]:
    from bindcore.nn.linear import cpuinfo_field

    flags = cpuinfo_field("flags").split()
    per_cycle = 64 if "avx512f" in flags else 32
    mhz = float(cpuinfo_field("cpu MHz") or 0) or 2000.0
    return (threads * per_cycle * mhz * 1e6,
            f"{threads} threads × {per_cycle} FP32 FLOP/cycle × {mhz / 1000:.2f} GHz (/proc/cpuinfo)")


def build_anchor(name: str, layers: int | None) -> Any:
    from bindcore.anchor import load_anchor

    if layers is None:
        return load_anchor(model=name, pretrained=None)
    import open_clip

    arch = open_clip.get_model_config(name)
    arch["vision_cfg"]["layers"] = layers
    return load_anchor(arch=arch)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], Any], steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    synchronize(device)
    if not steps:
        return 0.0
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn``; GEMMs through ``F.linear`` meanwhile (the counter does not know the oneDNN op
    that the frozen anchor's CPU forward uses; same arithmetic)."""
    import os

    from torch.utils.flop_counter import FlopCounterMode

    from bindcore.nn.linear import ENV_VAR, set_backend

    set_backend("aten")
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    finally:
        set_backend(os.environ.get(ENV_VAR) or "auto")
    return int(counter.get_total_flops())


def write_caches(folder: Path, batch: int, dim: int, views: int, seed: int) -> tuple[Any, Any]:
    from bindcore.recipe.schema import ImageCrop
    from bindcore.train.cache import AnchorCache
    from bindcore.train.views_cache import ViewsCache, boxes_path_of, view_boxes

    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((batch, views, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=-1, keepdims=True)
    plain = np.lib.format.open_memmap(folder / "plain.npy", mode="w+", dtype=np.float32, shape=(batch, dim))
    plain[:] = rows[:, 0]
    plain.flush()
    viewed = np.lib.format.open_memmap(folder / "views.npy", mode="w+", dtype=np.float16, shape=(batch, views, dim))
    viewed[:] = rows
    viewed.flush()
    np.save(boxes_path_of(folder / "views.npy"), view_boxes(batch, 224, 224, ImageCrop(), views, seed))
    return AnchorCache(folder / "plain.npy"), ViewsCache(folder / "views.npy", views)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=2, help="pairs per step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--anchor", default="ViT-H-14")
    parser.add_argument("--anchor-layers", type=int, default=None, help="image tower depth (default: the model's)")
    parser.add_argument("--audio-layers", type=int, default=12)
    parser.add_argument("--views", type=int, default=10, help="K of the augmented cache")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--compile", action="store_true", help="torch.compile the audio training forward")
    parser.add_argument("--also-compiled", action="store_true",
                        help="then run the cached modes again with the forward compiled (reported apart)")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--anchor-images-batch", type=int, default=0,
                        help="also time the anchor's image forward alone at this batch (images/s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    from bindcore.data.batches import ANCHOR_IMAGE_AXES, crop_resize, sample_crop_boxes
    from bindcore.recipe.schema import ImageCrop
    from bindcore.train.finetune import param_groups
    from bindcore.train.step import bind_step
    from bindcore.train.trainer import BindHead

    device = torch.device(args.device)
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    started = time.perf_counter()
    anchor = build_anchor(args.anchor, args.anchor_layers).to(device)
    depth = args.anchor_layers or "all"
    print(f"built {args.anchor} (random weights, image layers: {depth}) in {time.perf_counter() - started:.1f}s")
    audio = audio_modality(clips_per_item=1, embed_dim=anchor.embed_dim, num_layers=args.audio_layers)
    head = BindHead(audio, 0.05, learnable=False).to(device).train()
    optimizer = torch.optim.AdamW(param_groups(head, 0.2), lr=1e-4, betas=(0.9, 0.95),
                                  fused=device.type == "cuda" or None)
    model = torch.compile(head) if args.compile else head
    dtype = torch.bfloat16 if device.type == "cuda" else None

    def autocast() -> Any:
        return torch.autocast("cuda", dtype=dtype) if dtype is not None else nullcontext()

    batch = args.batch
    pin = device.type == "cuda"
    spectrograms = torch.randn(batch, 1, 1, audio.config.num_mel_bins, audio.config.target_length)
    images = torch.randn(batch, 3, 224, 224)
    boxes = sample_crop_boxes(batch, 224, 224, ImageCrop(), torch.Generator().manual_seed(0))
    cropped = crop_resize(images, boxes, ANCHOR_IMAGE_AXES)  # the DataLoader's work: not timed
    if pin:
        spectrograms, cropped = spectrograms.pin_memory(), cropped.pin_memory()
    indices = np.arange(batch)
    draws = torch.Generator().manual_seed(0)

    with tempfile.TemporaryDirectory() as folder:
        plain, views = write_caches(Path(folder), batch, anchor.embed_dim, args.views, seed=0)

        def targets_of(mode: str) -> torch.Tensor:
            if mode == "recompute":
                with autocast():
                    return anchor.encode_image(cropped.to(device, non_blocking=True)).float()
            if mode == "plain-cache":
                rows = plain.rows(indices)
            else:
                drawn = views.draw(batch, draws)
                rows, _ = views.rows(indices, drawn), views.boxes(indices, drawn)
            return rows.pin_memory().to(device, non_blocking=True) if pin else rows

        def step(mode: str, forward: Any = model) -> Any:
            inputs = spectrograms.to(device, non_blocking=True)
            return bind_step(head, forward, optimizer, inputs, targets_of(mode), micro_steps=1, grad_clip=1.0,
                             autocast=autocast)

        if args.peak_tflops is not None:
            peak, peak_note = args.peak_tflops * 1e12, f"{args.peak_tflops} TFLOP/s (given)"
        elif device.type == "cuda":
            peak, peak_note = H100_BF16_DENSE_TFLOPS * 1e12, "989 TFLOP/s (H100/H200 dense bf16)"
        else:
            peak, peak_note = cpu_peak_flops(torch.get_num_threads())
        results: dict[str, Any] = {"device": args.device, "device_name": torch.cuda.get_device_name(device)
                                   if device.type == "cuda" else "cpu", "batch": batch, "anchor": args.anchor,
                                   "anchor_layers": depth, "audio_layers": args.audio_layers, "views": args.views,
                                   "compile": args.compile, "precision": "bf16" if dtype else "fp32",
                                   "threads": torch.get_num_threads(), "peak_flops": peak, "peak": peak_note,
                                   "torch": torch.__version__}
        def run_modes(forward: Any, modes: list[str], label: str) -> dict[str, Any]:
            """Median step time of each mode, the modes' timed steps interleaved (round after round), so that a
            change in the machine's load falls on every mode alike."""
            for mode in modes:
                median_seconds(lambda m=mode: step(m, forward), 0, args.warmup, device)
            times: dict[str, list[float]] = {mode: [] for mode in modes}
            for _ in range(args.steps):
                for mode in modes:
                    times[mode].append(median_seconds(lambda m=mode: step(m, forward), 1, 0, device))
            measured = {}
            for mode in modes:
                seconds = statistics.median(times[mode])
                flops = count_flops(lambda m=mode: step(m, head))  # eager: the same arithmetic, countable
                measured[mode] = {"step_s": seconds, "samples_per_s": batch / seconds, "flops": flops,
                                  "mfu": flops / seconds / peak, "times_s": times[mode]}
                print(f"{mode + label:<21} median step {seconds:.4f}s  {batch / seconds:9.1f} samples/s  "
                      f"{flops / 1e9:9.1f} GFLOP  MFU {100 * flops / seconds / peak:5.1f}%", flush=True)
            return measured

        results["modes"] = run_modes(model, args.modes, " (compiled)" if args.compile else "")
        if args.also_compiled and not args.compile:
            started = time.perf_counter()
            compiled = torch.compile(head)
            step("views-cache", compiled)  # the compilation itself, reported apart from the steps
            results["compile_s"] = time.perf_counter() - started
            results["compiled_modes"] = run_modes(compiled, [m for m in args.modes if m != "recompute"],
                                                  " (compiled)")
        if args.anchor_images_batch:
            many = torch.randn(args.anchor_images_batch, 3, 224, 224, device=device)

            def anchor_forward() -> Any:
                with autocast():
                    return anchor.encode_image(many)

            seconds = median_seconds(anchor_forward, args.steps, args.warmup, device)
            flops = count_flops(anchor_forward)
            results["anchor_images"] = {"batch": args.anchor_images_batch, "seconds": seconds,
                                        "images_per_s": args.anchor_images_batch / seconds,
                                        "mfu": flops / seconds / peak}
            print(f"anchor image forward: {args.anchor_images_batch / seconds:.1f} images/s "
                  f"(MFU {100 * flops / seconds / peak:.1f}%)")
    modes = results["modes"]
    if "recompute" in modes:
        for cached in ("plain-cache", "views-cache"):
            if cached in modes:
                ratio = modes["recompute"]["step_s"] / modes[cached]["step_s"]
                results[f"speedup_{cached}"] = ratio
                print(f"{cached} vs recompute: {ratio:.2f}× per step")
    print(f"peak assumed: {peak_note}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
