"""Embedding throughput per modality: bindcore vs a re-implementation of the reference ImageBind forward.

For each modality a *reference re-implementation* is built with ImageBind's structure and parameter layout
(spec §4: sequence-first ``nn.MultiheadAttention`` blocks behind an ``l b d`` rearrange, ``PadIm2Video`` +
``Conv3d`` vision stem, heads that LayerNorm every token before selecting one, per-modality post-scaling) and
random weights. Its state dict — an ImageBind checkpoint in miniature — is then converted the way
``bindcore convert imagebind`` converts the real one: ``from_imagebind`` of the installed plugin for
audio/depth/thermal/imu, the open_clip anchor for vision/text. Both run the same weights on the same
preprocessed inputs (CPU, fp32, eval, no autograd); the script checks that their L2-normalised outputs agree
and reports items/s (median of ``--repeats`` timed batches after one warm-up).

Memory: each modality is also built alone in a fresh subprocess and its peak resident set is measured, versus
the reference, which builds all six branches (4.80 GB of float32 weights for ``imagebind_huge``) for any query.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_embed.py                       # reference sizes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_embed.py --size small --items 4  # quick check
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_embed.py --modalities audio,imu --no-memory
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_embed.py --modalities vision,text --no-memory \
        --compare-open-clip                                                  # anchor: SDPA path vs open_clip's
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_embed.py --compile --no-memory  # BindModel(compile=True)

With ``--compile`` bindcore's forward runs through ``torch.compile`` with inductor freezing, as
``BindModel(compile=True)`` does; the first (compiling) call is timed separately and excluded from items/s, and
the compiled output is checked against eager. Compile time depends on inductor's cache
(``TORCHINDUCTOR_CACHE_DIR``): point it at an empty directory for a cold-start figure.

Prints markdown table rows. The reference code itself is not used (nor copied): the baseline is written from
the spec, and labelled a re-implementation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# imagebind_huge sizes (spec §4.2): width, blocks, heads; all heads project to 1024.
HUGE = {
    "vision": (1280, 32, 16), "text": (1024, 24, 16), "audio": (768, 12, 12),
    "depth": (384, 12, 8), "thermal": (768, 12, 12), "imu": (512, 6, 8),
}
SMALL = {name: (64, 2, 4) for name in HUGE}
POST_SCALE = {"audio": 20.0, "depth": 5.0, "thermal": 10.0, "imu": 5.0}
ORDER = ("vision", "text", "audio", "depth", "thermal", "imu")


# ---------------------------------------------------------------------------------------------------------
# Reference re-implementation (ImageBind layout, sequence-first MultiheadAttention)
# ---------------------------------------------------------------------------------------------------------
class RefMlp(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class RefBlock(nn.Module):
    def __init__(self, width: int, heads: int, bias_kv: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, bias=True, add_bias_kv=bias_kv)
        self.norm_1, self.norm_2 = nn.LayerNorm(width, eps=1e-6), nn.LayerNorm(width, eps=1e-6)
        self.mlp = RefMlp(width)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:  # x: (L, B, D)
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.norm_2(x))


class RefTrunk(nn.Module):
    def __init__(self, width: int, depth: int, heads: int, *, bias_kv: bool, pre_ln: bool):
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(width, eps=1e-6) if pre_ln else nn.Identity())
        self.blocks = nn.ModuleList(RefBlock(width, heads, bias_kv) for _ in range(depth))

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self.pre_transformer_layer(tokens).transpose(0, 1)  # "b l d -> l b d", as the reference
        for block in self.blocks:
            x = block(x, mask)
        return x.transpose(0, 1)


class PadIm2Video(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(2).repeat(1, 1, 2, 1, 1) if x.ndim == 4 else x


class Stem(nn.Module):
    def __init__(self, proj: nn.Module, norm: nn.Module | None):
        super().__init__()
        self.proj = proj
        if norm is not None:
            self.norm_layer = norm


class RefPatchPre(nn.Module):
    """Conv stem (+ LN eps 1e-5) → cls + learned positions; ``stem_name`` is ImageBind's attribute name."""

    def __init__(self, stem_name: str, stem: Stem, width: int, tokens: int):
        super().__init__()
        self.stem_name = stem_name
        setattr(self, stem_name, stem)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * width**-0.5)
        self.pos_embedding_helper = nn.Module()
        self.pos_embedding_helper.pos_embed = nn.Parameter(torch.randn(1, tokens, width) * width**-0.5)

    def forward(self, x: Tensor) -> Tensor:
        stem = getattr(self, self.stem_name)
        x = stem.proj(x).flatten(2).transpose(1, 2)
        if hasattr(stem, "norm_layer"):
            x = stem.norm_layer(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_embedding_helper.pos_embed


class RefImuPre(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.imu_stem = Stem(nn.Linear(48, width, bias=False), nn.LayerNorm(width))
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * width**-0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, 251, width) * 0.01)

    def forward(self, x: Tensor) -> Tensor:
        x = x.unfold(-1, 8, 8).permute(0, 2, 1, 3).reshape(x.shape[0], -1, 48)
        x = self.imu_stem.norm_layer(self.imu_stem.proj(x))
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed


class RefTextPre(nn.Module):
    def __init__(self, width: int, vocab: int = 49408, context: int = 77):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.pos_embed = nn.Parameter(torch.randn(1, context, width) * 0.01)
        self.register_buffer("mask", torch.full((context, context), float("-inf")).triu_(1))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.token_embedding(tokens) + self.pos_embed


class SelectFirst(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x[:, 0]


class RefBranch(nn.Module):
    """One ImageBind modality: preprocessor → trunk → head → postprocessor; reduces ``(B, S, …)`` clips."""

    def __init__(self, name: str, width: int, depth: int, heads: int, out_dim: int):
        super().__init__()
        self.name = name
        bias_kv = name not in ("vision", "text")
        self.trunk = RefTrunk(width, depth, heads, bias_kv=bias_kv, pre_ln=name == "vision")
        if name == "vision":
            conv = nn.Conv3d(3, width, kernel_size=(2, 14, 14), stride=(2, 14, 14), bias=False)
            self.pre = RefPatchPre("rgbt_stem", Stem(nn.Sequential(PadIm2Video(), conv), None), width, 257)
        elif name == "text":
            self.pre = RefTextPre(width)
        elif name == "imu":
            self.pre = RefImuPre(width)
        else:
            kernel, stride, tokens = (16, 10, 229) if name == "audio" else (16, 16, 197)
            stem = Stem(nn.Conv2d(1, width, kernel, stride=stride, bias=False), nn.LayerNorm(width))
            self.pre = RefPatchPre("depth_stem" if name == "depth" else "rgbt_stem", stem, width, tokens)
        if name == "text":
            self.head = nn.Module()
            self.head.proj = nn.Sequential(nn.LayerNorm(width, eps=1e-6), nn.Linear(width, out_dim, bias=False))
        elif name == "imu":
            self.head = nn.Sequential(nn.LayerNorm(width, eps=1e-6), SelectFirst(), nn.Dropout(0.5),
                                      nn.Linear(width, out_dim, bias=False))
        else:
            self.head = nn.Sequential(nn.LayerNorm(width, eps=1e-6), SelectFirst(),
                                      nn.Linear(width, out_dim, bias=False))
        self.post = nn.Module()
        if name == "text":
            self.post.scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        elif name in POST_SCALE:
            self.post.register_buffer("scale", torch.tensor(math.log(POST_SCALE[name])))

    def forward(self, x: Tensor) -> Tensor:
        reduce = x.ndim >= 5
        if reduce:
            batch, clips = x.shape[:2]
            x = x.reshape(batch * clips, *x.shape[2:])
        tokens = self.pre(x)
        mask = self.pre.mask if self.name == "text" else None
        h = self.trunk(tokens, mask)
        if self.name == "text":
            h = h[torch.arange(h.shape[0]), x.argmax(dim=-1)]
            z = self.head.proj(h)
        else:
            z = self.head(h)
        z = F.normalize(z, dim=-1)
        if hasattr(self.post, "scale"):
            z = z * self.post.scale.exp().clamp(max=100)
        return z.reshape(batch, clips, -1).mean(dim=1) if reduce else z

    def imagebind_state_dict(self) -> dict[str, Tensor]:
        """This branch's weights under ImageBind's checkpoint keys (the layout ``bindcore convert`` reads)."""
        out: dict[str, Tensor] = {}
        for key, value in self.state_dict().items():
            part, rest = key.split(".", 1)
            if part == "pre":
                out[f"modality_preprocessors.{self.name}.{rest}"] = value
            elif part == "trunk":
                out[f"modality_trunks.{self.name}.{rest}"] = value
            elif part == "head":
                out[f"modality_heads.{self.name}.{rest}"] = value
            else:
                out[f"modality_postprocessors.{self.name}.1.log_logit_scale"] = value
        return out


# ---------------------------------------------------------------------------------------------------------
# bindcore side: the same weights, converted
# ---------------------------------------------------------------------------------------------------------
def bindcore_forward(name: str, sd: dict[str, Tensor], heads: int) -> Callable[[Tensor], Tensor]:
    """The converted model's forward on a preprocessed batch (what ``BindModel.embed`` runs after preprocess)."""
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


def time_both(first: Callable[[Tensor], Tensor], second: Callable[[Tensor], Tensor], x: Tensor,
              repeats: int) -> tuple[float, float, Tensor, Tensor]:
    """Median seconds per batch of each, alternating runs so drifting machine load hits both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    with torch.inference_mode():
        outs = [first(x), second(x)]  # warm-up
        for _ in range(repeats):
            for i, fn in enumerate((first, second)):
                start = time.perf_counter()
                outs[i] = fn(x)
                times[i].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1]), outs[0], outs[1]


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


def bench_throughput(name: str, sizes: dict[str, tuple[int, int, int]], items: int, repeats: int,
                     open_clip_blocks: bool = False, compile: bool = False) -> dict:
    width, depth, heads = sizes[name]
    torch.manual_seed(0)
    reference = RefBranch(name, width, depth, heads, out_dim=1024 if sizes is HUGE else 32).eval()
    sd = reference.imagebind_state_dict()
    ours = bindcore_forward(name, sd, heads)
    if open_clip_blocks:
        ours = open_clip_path(ours)
    x = make_inputs(name, items)
    extra = {}
    if compile:
        ours, seconds, diff = compile_forward(ours, x)
        extra = {"compile_s": seconds, "compiled_vs_eager_diff": diff}
    ref_time, our_time, ref_out, our_out = time_both(reference, ours, x, repeats)
    anchor = getattr(ours, "__self__", None)
    if anchor is not None:  # say when the anchor fell back to open_clip's blocks: the figure would mean that
        tower = "image" if name == "vision" else "text"
        if anchor.last_path.get(tower) != "sdpa":
            print(f"note: {name} ran open_clip's blocks ({anchor.fallback_reason.get(tower)})", file=sys.stderr)
    diff = (F.normalize(ref_out.float(), dim=-1) - F.normalize(our_out.float(), dim=-1)).abs().max().item()
    return {"modality": name, "items": items, "reference_items_s": items / ref_time,
            "bindcore_items_s": items / our_time, "speedup": ref_time / our_time, "max_abs_diff": diff, **extra}


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
    width, depth, heads = (HUGE if size == "huge" else SMALL)[name]
    torch.manual_seed(0)
    if name in ("vision", "text"):  # the anchor tower alone, as a converted checkpoint gives it
        reference = RefBranch(name, width, depth, heads, out_dim=1024 if size == "huge" else 32)
        fn = bindcore_forward(name, reference.imagebind_state_dict(), heads)
        del reference
    else:
        from bindcore.inference import BindModel

        # plugin defaults are imagebind_huge's sizes; "small" shrinks them
        options = {} if size == "huge" else {"width": width, "num_heads": heads,
                                             "num_layers": depth, "embed_dim": 32}
        model = BindModel.for_modalities([name], options={name: options})
        fn = model  # keep alive
    params = _rss() - baseline
    print(json.dumps({"modality": name, "resident_bytes": params}))
    del fn


def imagebind_huge_bytes() -> dict[str, int]:
    """float32 bytes per modality of ``imagebind_huge`` from the stored key/shape list (spec §5), if present."""
    from pathlib import Path

    shared = Path(os.environ.get("BINDCORE_PARITY_DIR",
                                 Path(__file__).resolve().parents[1].parent / "shared" / "imagebind_vectors"))
    keys = shared / "imagebind_huge_state_dict_keys.txt"
    if not keys.is_file():
        return {}
    totals: dict[str, int] = {}
    for line in keys.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.split("\t")[:2]
        numel = math.prod(int(s) for s in shape.strip("()").split(",") if s.strip()) if shape != "()" else 1
        totals[key.split(".")[1]] = totals.get(key.split(".")[1], 0) + 4 * numel
    return totals


def bench_memory(names: list[str], size: str) -> list[dict]:
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
    for name in names:
        done = subprocess.run([sys.executable, __file__, "--memory-child", name, "--size", size], env=env,
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modalities", default=",".join(ORDER))
    parser.add_argument("--size", choices=("huge", "small"), default="huge")
    parser.add_argument("--items", type=int, default=2, help="items per timed batch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-memory", action="store_true")
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
    names = [n for n in args.modalities.split(",") if n]
    sizes = HUGE if args.size == "huge" else SMALL
    from bench_gemm import cpu_model

    from bindcore.nn import linear as cpu_linear

    backend = "oneDNN" if cpu_linear.uses_onednn(torch.ones(2, 2), torch.ones(2, 2)) else "F.linear"
    print(f"{cpu_model()}, torch {torch.__version__}, threads {torch.get_num_threads()}, size {args.size}, "
          f"items {args.items}, repeats {args.repeats}, bindcore inference GEMMs: {backend}")
    extra_head, extra_rule = (" compile (s) | compiled vs eager |", "---|---|") if args.compile else ("", "")
    print("| modality | reference re-impl. (items/s) | bindcore (items/s) | speed-up | max abs diff (unit vectors) |"
          + extra_head)
    print("|---|---|---|---|---|" + extra_rule)
    for name in names:
        row = bench_throughput(name, sizes, args.items, args.repeats, compile=args.compile)
        extra = f" {row['compile_s']:.1f} | {row['compiled_vs_eager_diff']:.1e} |" if args.compile else ""
        print(f"| {name} | {row['reference_items_s']:.2f} | {row['bindcore_items_s']:.2f} | "
              f"{row['speedup']:.2f}× | {row['max_abs_diff']:.1e} |" + extra, flush=True)
    for name in [n for n in names if n in ("vision", "text")] if args.compare_open_clip else []:
        row = bench_throughput(name, sizes, args.items, args.repeats, open_clip_blocks=True)
        print(f"| {name}, open_clip's blocks (fast path off) | {row['reference_items_s']:.2f} | "
              f"{row['bindcore_items_s']:.2f} | {row['speedup']:.2f}× | {row['max_abs_diff']:.1e} |", flush=True)
    if args.no_memory:
        return
    reference = imagebind_huge_bytes() if args.size == "huge" else {}
    total = sum(reference.values())
    print()
    print("| modality requested | bindcore resident (MB) | reference loads (MB, all six) |")
    print("|---|---|---|")
    for row in bench_memory(names, args.size):
        print(f"| {row['modality']} | {row['resident_bytes'] / 1e6:.0f} | {total / 1e6:.0f} |" if total else
              f"| {row['modality']} | {row['resident_bytes'] / 1e6:.0f} | - |", flush=True)


if __name__ == "__main__":
    main()
