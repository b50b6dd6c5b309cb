"""Embedding throughput per modality: bindcore vs Meta's own ImageBind code, same weights, same inputs.

The baseline is Meta's ImageBind (PyPI ``imagebind-unofficial`` 0.1.1, byte-identical to
facebookresearch/ImageBind@53680b0), built by ``../shared/reference/install-reference VENV`` as a virtual
environment layered on the project's ``.venv``; run this script with that environment's Python. No checkpoint can
be downloaded, so the reference model is ``imagebind_huge()`` with its own random initialisation (``--size
small``: a small ``ImageBindModel`` for a quick check). Its state dict is converted by bindcore's converter, the
way ``bindcore convert imagebind`` converts the released checkpoint: ``from_imagebind`` of the installed plugin for
audio/depth/thermal/imu, the open_clip anchor (``bindcore.convert.open_clip_anchor``) run through
``FrozenAnchor`` for vision/text, as bind-vision/bind-text do. Both then run the same weights on the same
preprocessed tensors in one process (CPU, fp32, eval, no autograd), interleaved (reference, bindcore, reference,
bindcore, ... so drifting load from other jobs hits both alike); items/s are medians of ``--repeats`` timed
batches after one warm-up, and the last column is the largest difference between their unit embeddings.

    ../shared/reference/install-reference ../refvenv                                      # once
    OMP_NUM_THREADS=1 ../refvenv/bin/python benchmarks/bench_embed.py --items 2 --repeats 3 --no-memory
    OMP_NUM_THREADS=1 ../refvenv/bin/python benchmarks/bench_embed.py --size small --items 4 --no-memory
    OMP_NUM_THREADS=1 ../refvenv/bin/python benchmarks/bench_embed.py --modalities audio,imu --compare-aten
    OMP_NUM_THREADS=1 ../refvenv/bin/python benchmarks/bench_embed.py --modalities vision,text --no-memory \
        --compare-open-clip                                                  # anchor: SDPA path vs open_clip's
    OMP_NUM_THREADS=1 ../refvenv/bin/python benchmarks/bench_embed.py --compile --no-memory  # BindModel(compile=True)

The header line names the CPU model, whether it has AVX-512 (``avx512f`` in ``/proc/cpuinfo``), PyTorch's CPU
capability, which GEMM path bindcore's inference used (``bindcore.nn.linear``: oneDNN or ``F.linear``) and the
load average before and after. ``--compare-aten`` adds bindcore with ``F.linear`` GEMMs
(``BINDCORE_CPU_LINEAR=aten``) to the interleaved runs.

With ``--compile`` bindcore's forward runs through ``torch.compile`` with inductor freezing, as
``BindModel(compile=True)`` does; the first (compiling) call is timed separately and excluded from items/s, and
the compiled output is checked against eager. Compile time depends on inductor's cache
(``TORCHINDUCTOR_CACHE_DIR``): point it at an empty directory for a cold-start figure.

Memory (unless ``--no-memory``): each modality is built alone in a fresh subprocess and its resident set is
measured, versus the reference model, which builds all six branches for any query.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

ORDER = ("vision", "text", "audio", "depth", "thermal", "imu")
#: ``ImageBindModel`` arguments of the small model (``--size small``); huge is ``imagebind_huge()`` itself.
SMALL_KWARGS = {"out_embed_dim": 32, **{f"{name}_{what}": value for name in ORDER
                                        for what, value in (("embed_dim", 64), ("num_blocks", 2), ("num_heads", 4))}}
INSTALL_HINT = ("Meta's ImageBind code is not importable from this Python: build the reference environment with "
                "'../shared/reference/install-reference VENV' and run this script with VENV/bin/python")


# ---------------------------------------------------------------------------------------------------------
# the reference (Meta's code) and bindcore's conversion of its weights
# ---------------------------------------------------------------------------------------------------------
def build_reference(size: str) -> torch.nn.Module:
    """Meta's ``ImageBindModel`` with its own random initialisation, eval mode (all six branches, as it builds)."""
    try:
        from imagebind.models import imagebind_model
    except ImportError as error:
        raise SystemExit(f"{INSTALL_HINT} ({error})") from None
    torch.manual_seed(0)
    if size == "huge":
        model = imagebind_model.imagebind_huge(pretrained=False)
    else:
        model = imagebind_model.ImageBindModel(**SMALL_KWARGS)
    return model.eval().requires_grad_(False)


def heads_for(size: str) -> dict[str, int]:
    from bindcore.convert.checkpoint import IMAGEBIND_HUGE_HEADS

    return dict(IMAGEBIND_HUGE_HEADS) if size == "huge" else {name: SMALL_KWARGS[f"{name}_num_heads"] for name in ORDER}


def reference_forward(model: torch.nn.Module, name: str) -> Callable[[Tensor], Tensor]:
    """Meta's forward for one modality: ``model({name: x})[name]`` (clip reduction, post-scaling included)."""
    return lambda x: model({name: x})[name]


def bindcore_forward(name: str, model_sd: dict[str, Tensor], heads: int) -> Callable[[Tensor], Tensor]:
    """bindcore's conversion of the reference weights for ``name``, as a forward on the preprocessed batch (what
    ``BindModel.embed`` runs after preprocess)."""
    from bindcore.convert.checkpoint import split_by_modality

    sd = split_by_modality(model_sd)[name]
    if name in ("vision", "text"):
        return _anchor_forward(name, sd, heads)
    import bindcore

    module = bindcore.modality_class(name).from_imagebind(sd, num_heads=heads).eval()
    if name == "imu":  # the reference takes (N, 6, T); bind-imu wants the window axis: one window per item
        return lambda x: module(module.to_model_input(x[:, None]))
    return lambda x: module(module.to_model_input(x))


def _anchor_forward(name: str, sd: dict[str, Tensor], heads: int) -> Callable[[Tensor], Tensor]:
    """One converted tower inside an open_clip CLIP, run through bindcore's FrozenAnchor (as bind-vision/-text do).

    The other tower is a tiny stand-in so only the benchmarked tower's weights exist in memory; the model is
    built on the meta device and takes the converted tensors by assignment (no second copy)."""
    from open_clip.model import CLIP

    from bindcore.anchor import freeze
    from bindcore.convert.open_clip_anchor import convert_text_tower, convert_vision_tower

    if name == "vision":
        tower_cfg, tower_sd = convert_vision_tower(sd, num_heads=heads)
        dim = tower_sd["visual.proj"].shape[1]
        other_cfg = {"width": 8, "heads": 1, "layers": 1, "vocab_size": 10, "context_length": 4,
                     "norm_kwargs": {"eps": 1e-6}}
        cfg = {"embed_dim": dim, "vision_cfg": tower_cfg, "text_cfg": other_cfg}
    else:
        tower_cfg, tower_sd = convert_text_tower(sd, num_heads=heads)
        dim = tower_sd["text_projection"].shape[1]
        other_cfg = {"image_size": 8, "patch_size": 8, "width": 8, "head_width": 8, "layers": 1}
        cfg = {"embed_dim": dim, "vision_cfg": other_cfg, "text_cfg": tower_cfg}
    with torch.device("meta"):
        model = CLIP(**cfg)
    state = {k: tower_sd[k].contiguous() if k in tower_sd else torch.zeros(v.shape)
             for k, v in model.state_dict().items()}
    model.load_state_dict(state, assign=True)
    context = model.positional_embedding.shape[0]
    model.attn_mask = torch.full((context, context), float("-inf")).triu_(1)  # non-persistent buffer
    anchor = freeze(model, arch=cfg)
    return anchor.encode_image if name == "vision" else anchor.encode_text  # bound: open_clip_path finds the anchor


# ---------------------------------------------------------------------------------------------------------
# inputs and timing
# ---------------------------------------------------------------------------------------------------------
def make_inputs(name: str, items: int, seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    if name == "vision":
        return torch.randn(items, 3, 224, 224, generator=gen)
    if name == "text":
        tokens = torch.zeros(items, 77, dtype=torch.long)
        for i in range(items):  # typical captions: 8–20 BPE tokens between SOT and EOT
            length = 8 + (i * 5) % 13
            tokens[i, 0] = 49406
            tokens[i, 1:length] = torch.randint(1, 49000, (length - 1,), generator=gen)
            tokens[i, length] = 49407
        return tokens
    if name == "audio":
        return torch.randn(items, 3, 1, 128, 204, generator=gen)
    if name in ("depth", "thermal"):
        return torch.randn(items, 1, 224, 224, generator=gen)
    return torch.randn(items, 6, 2000, generator=gen)


def time_interleaved(fns: list[Callable[[Tensor], Tensor]], x: Tensor,
                     repeats: int) -> tuple[list[float], list[Tensor]]:
    """Median seconds per batch of each of ``fns`` and their last outputs; the runs alternate (a, b, a, b, ...) so
    drifting machine load hits all alike."""
    times: list[list[float]] = [[] for _ in fns]
    with torch.inference_mode():
        outs = [fn(x) for fn in fns]  # warm-up
        for _ in range(repeats):
            for i, fn in enumerate(fns):
                start = time.perf_counter()
                outs[i] = fn(x)
                times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], outs


def with_backend(forward: Callable[[Tensor], Tensor], backend: str) -> Callable[[Tensor], Tensor]:
    """``forward`` with ``bindcore.nn.linear``'s backend switched to ``backend`` for the call."""
    from bindcore.nn import linear as cpu_linear

    def run(x: Tensor) -> Tensor:
        saved = cpu_linear._onednn_op
        cpu_linear.set_backend(backend)
        try:
            return forward(x)
        finally:
            cpu_linear._onednn_op = saved

    return run


def unit_diff(a: Tensor, b: Tensor) -> float:
    return (F.normalize(a.float(), dim=-1) - F.normalize(b.float(), dim=-1)).abs().max().item()



def open_clip_path(forward: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """The same anchor forward with ``FrozenAnchor``'s SDPA path switched off (open_clip's own blocks)."""
    anchor = forward.__self__  # type: ignore[attr-defined]  # FrozenAnchor.encode_image/encode_text

    def run(x: Tensor) -> Tensor:
        anchor.use_fast_path = False
        try:
            return forward(x)
        finally:
            anchor.use_fast_path = True

    return run


def compile_forward(forward: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Callable[[Tensor], Tensor], float, float]:
    """``forward`` through torch.compile as ``BindModel(compile=True)`` does it (inductor, frozen weights, one
    graph per batch shape): the compiled callable, seconds spent compiling (first call), max abs diff to eager."""
    from bindcore.inference import _frozen_compile

    compiled = _frozen_compile(forward)
    with torch.inference_mode():
        start = time.perf_counter()
        out = compiled(x)
        seconds = time.perf_counter() - start
        diff = (out - forward(x)).abs().max().item()
    return compiled, seconds, diff


def bench_throughput(name: str, reference: torch.nn.Module, size: str, items: int, repeats: int,
                     open_clip_blocks: bool = False, compile: bool = False, compare_aten: bool = False) -> dict:
    ref = reference_forward(reference, name)
    ours = bindcore_forward(name, reference.state_dict(), heads_for(size)[name])
    if open_clip_blocks:
        ours = open_clip_path(ours)
    x = make_inputs(name, items)
    extra = {}
    if compile:
        ours, seconds, diff = compile_forward(ours, x)
        extra = {"compile_s": seconds, "compiled_vs_eager_diff": diff}
    fns = [ref, ours] + ([with_backend(ours, "aten")] if compare_aten else [])
    seconds, outs = time_interleaved(fns, x, repeats)
    anchor = getattr(ours, "__self__", None)
    if anchor is not None:  # say when the anchor fell back to open_clip's blocks: the figure would mean that
        tower = "image" if name == "vision" else "text"
        if anchor.last_path.get(tower) != "sdpa":
            print(f"note: {name} ran open_clip's blocks ({anchor.fallback_reason.get(tower)})", file=sys.stderr)
    row = {"modality": name, "items": items, "reference_items_s": items / seconds[0],
           "bindcore_items_s": items / seconds[1], "speedup": seconds[0] / seconds[1],
           "max_abs_diff": unit_diff(outs[0], outs[1]), **extra}
    if compare_aten:
        row.update(aten_items_s=items / seconds[2], aten_speedup=seconds[0] / seconds[2],
                   aten_max_abs_diff=unit_diff(outs[0], outs[2]))
    return row


# ---------------------------------------------------------------------------------------------------------
# memory (each measurement in a fresh subprocess)
# ---------------------------------------------------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_child(name: str, size: str) -> None:
    import bindcore
    import bindcore.anchor
    import bindcore.inference

    if name not in ("vision", "text"):
        bindcore.modality_class(name)  # import the plugin first: code is not part of the model's memory
    import open_clip  # noqa: F401

    baseline = _rss()
    if name in ("vision", "text"):  # the anchor tower alone, converted from the reference's weights
        reference = build_reference(size)
        fn = bindcore_forward(name, reference.state_dict(), heads_for(size)[name])
        del reference
        gc.collect()
    else:
        from bindcore.inference import BindModel

        # plugin defaults are imagebind_huge's sizes; "small" shrinks them
        options = {} if size == "huge" else {"width": SMALL_KWARGS[f"{name}_embed_dim"],
                                             "num_heads": SMALL_KWARGS[f"{name}_num_heads"],
                                             "num_layers": SMALL_KWARGS[f"{name}_num_blocks"],
                                             "embed_dim": SMALL_KWARGS["out_embed_dim"]}
        fn = BindModel.for_modalities([name], options={name: options})  # keep alive while measuring
    params = _rss() - baseline
    print(json.dumps({"modality": name, "resident_bytes": params}))
    del fn


def bench_memory(names: list[str], size: str) -> list[dict]:
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
    for name in names:
        done = subprocess.run([sys.executable, __file__, "--memory-child", name, "--size", size], env=env,
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def machine_line() -> str:
    """CPU model, AVX-512 or not, PyTorch's CPU capability, and the GEMM path bindcore's inference takes."""
    from bench_gemm import cpu_model

    from bindcore.nn import linear as cpu_linear

    avx512 = "avx512f" in cpu_linear.cpuinfo_field("flags").split()
    gemm = "oneDNN" if cpu_linear.uses_onednn(torch.ones(2, 2), torch.ones(2, 2)) else "F.linear"
    return (f"CPU {cpu_model()} ({'AVX-512' if avx512 else 'no AVX-512'}; torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}), torch {torch.__version__}, "
            f"threads {torch.get_num_threads()}, bindcore inference GEMMs: {gemm} "
            f"({cpu_linear.ENV_VAR}={os.environ.get(cpu_linear.ENV_VAR, 'auto')})")


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modalities", default=",".join(ORDER))
    parser.add_argument("--size", choices=("huge", "small"), default="huge")
    parser.add_argument("--items", type=int, default=2, help="items per timed batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--compare-aten", action="store_true",
                        help="also time bindcore with F.linear GEMMs (BINDCORE_CPU_LINEAR=aten), interleaved")
    parser.add_argument("--compare-open-clip", action="store_true",
                        help="also time vision/text through open_clip's own blocks (FrozenAnchor.use_fast_path=False)")
    parser.add_argument("--compile", action="store_true",
                        help="time bindcore through torch.compile (inductor, frozen weights; BindModel(compile=True)); "
                             "compile time and compiled-vs-eager difference reported separately")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child, args.size)
        return
    if args.compare_aten and args.compile:
        parser.error("--compare-aten times eager GEMM paths; it cannot be combined with --compile")
    names = [n for n in args.modalities.split(",") if n]
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        parser.error(f"--modalities: unknown {', '.join(unknown)} (choose from {', '.join(ORDER)})")
    print(machine_line())
    print(f"baseline: Meta's ImageBind code, size {args.size}, random weights; items {args.items}, "
          f"repeats {args.repeats}; load average (1/5/15 min) before: {load_average()}", flush=True)
    reference = build_reference(args.size)
    extra_head, extra_rule = "", ""
    if args.compare_aten:
        extra_head, extra_rule = " bindcore, F.linear GEMMs (items/s) | speed-up | max abs diff |", "---|---|---|"
    if args.compile:
        extra_head, extra_rule = extra_head + " compile (s) | compiled vs eager |", extra_rule + "---|---|"
    print("| modality | Meta's reference (items/s) | bindcore (items/s) | speed-up | max abs diff (unit vectors) |"
          + extra_head)
    print("|---|---|---|---|---|" + extra_rule)
    for name in names:
        row = bench_throughput(name, reference, args.size, args.items, args.repeats, compile=args.compile,
                               compare_aten=args.compare_aten)
        gc.collect()  # the converted modality goes before the next is built
        extra = ""
        if args.compare_aten:
            extra += f" {row['aten_items_s']:.2f} | {row['aten_speedup']:.2f}× | {row['aten_max_abs_diff']:.1e} |"
        if args.compile:
            extra += f" {row['compile_s']:.1f} | {row['compiled_vs_eager_diff']:.1e} |"
        print(f"| {name} | {row['reference_items_s']:.2f} | {row['bindcore_items_s']:.2f} | "
              f"{row['speedup']:.2f}× | {row['max_abs_diff']:.1e} |" + extra, flush=True)
    for name in [n for n in names if n in ("vision", "text")] if args.compare_open_clip else []:
        row = bench_throughput(name, reference, args.size, args.items, args.repeats, open_clip_blocks=True)
        print(f"| {name}, open_clip's blocks (fast path off) | {row['reference_items_s']:.2f} | "
              f"{row['bindcore_items_s']:.2f} | {row['speedup']:.2f}× | {row['max_abs_diff']:.1e} |", flush=True)
    print(f"load average (1/5/15 min) after: {load_average()}", flush=True)
    if args.no_memory:
        return
    reference_bytes = sum(t.numel() * t.element_size() for t in reference.state_dict().values())
    del reference
    gc.collect()
    print()
    print("| modality requested | bindcore resident (MB) | reference model's weights (MB, all six) |")
    print("|---|---|---|")
    for row in bench_memory(names, args.size):
        print(f"| {row['modality']} | {row['resident_bytes'] / 1e6:.0f} | {reference_bytes / 1e6:.0f} |", flush=True)


if __name__ == "__main__":
    main()
