"""An exact SDPA forward of open_clip's standard towers, reading the same parameters.

open_clip's blocks run ``nn.MultiheadAttention``: with a causal mask (text) PyTorch leaves its fast path,
transposes the batch and runs the packed in-projection as a broadcast bmm; without a mask (images) the fast
path materialises the softmax, and its GEMMs stay on PyTorch's default BLAS. :func:`sdpa_blocks` runs the *same*
parameters through :mod:`bindcore.nn.linear` + ``F.scaled_dot_product_attention`` (flash kernel, ``is_causal``
instead of a mask), batch-first; texts are cut after the batch's last pooled token and the last image block
computes the class token only (both exact). It covers only blocks whose maths it reproduces exactly; for anything
else the ``*_fast_path_blocker`` functions return a reason and :class:`~bindcore.anchor.frozen.FrozenAnchor` runs
open_clip's own forward. What each path is worth, measured side by side: BENCHMARKS.md, "Anchor forward paths".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bindcore.nn.linear import linear, linear_act

SDPA_PATH = "sdpa"
OPEN_CLIP_PATH = "open_clip"


def has_split_vision(visual: nn.Module) -> bool:
    from open_clip.transformer import VisionTransformer

    return isinstance(visual, VisionTransformer) and not getattr(visual, "output_tokens", False)


def has_split_text(model: nn.Module) -> bool:
    from open_clip import CLIP

    return isinstance(model, CLIP)


def _blocks_unsupported(transformer: nn.Module) -> str | None:
    """Why ``transformer``'s blocks cannot run through :func:`sdpa_blocks` (None: they can)."""
    from open_clip.transformer import ResidualAttentionBlock, Transformer

    if type(transformer) is not Transformer:
        return f"transformer is {type(transformer).__name__}, not open_clip's Transformer"
    for index, block in enumerate(transformer.resblocks):
        if type(block) is not ResidualAttentionBlock:  # e.g. CustomResidualAttentionBlock: qk-norm, scaled cosine
            return f"block {index} is {type(block).__name__}"
        if hasattr(block, "ln_1_kv"):
            return f"block {index} is a cross-attention block"
        attn = block.attn
        if (type(attn) is not nn.MultiheadAttention or not attn._qkv_same_embed_dim or attn.in_proj_weight is None
                or attn.bias_k is not None or attn.add_zero_attn):
            return f"block {index} has a non-standard attention (separate q/k/v weights, bias_kv or zero_attn)"
    return None


def sdpa_blocks(transformer: nn.Module, x: Tensor, *, causal: bool, first_token_only: bool = False) -> Tensor:
    """open_clip ``ResidualAttentionBlock`` stack on batch-first ``x`` (B, L, D), computed with SDPA.

    ``first_token_only``: the caller reads only token 0 of the output, so the last block computes its
    query, attention output and MLP for that row alone (keys/values still come from every token): exact.
    """
    blocks = transformer.resblocks
    for index, block in enumerate(blocks):
        attn = block.attn
        batch, length, dim = x.shape
        heads = attn.num_heads
        h = block.ln_1(x)
        if first_token_only and index == len(blocks) - 1 and not causal:
            bias = attn.in_proj_bias
            q = linear(h[:, :1], attn.in_proj_weight[:dim], None if bias is None else bias[:dim])
            k, v = linear(h, attn.in_proj_weight[dim:], None if bias is None else bias[dim:]).chunk(2, dim=-1)
            x = x[:, :1]
        else:
            q, k, v = linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        rows = q.shape[1]
        q = q.reshape(batch, rows, heads, -1).transpose(1, 2)
        k = k.reshape(batch, length, heads, -1).transpose(1, 2)
        v = v.reshape(batch, length, heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        out = out.transpose(1, 2).reshape(batch, rows, dim)
        x = x + block.ls_1(linear(out, attn.out_proj.weight, attn.out_proj.bias))
        x = x + block.ls_2(_open_clip_mlp(block.mlp, block.ln_2(x)))
    return x


def _open_clip_mlp(mlp: nn.Module, x: Tensor) -> Tensor:
    """open_clip's ``c_fc → gelu → c_proj`` MLP, its GEMMs through :mod:`bindcore.nn.linear`."""
    if set(dict(mlp.named_children())) != {"c_fc", "gelu", "c_proj"} or mlp.training:
        return mlp(x)
    return linear(linear_act(x, mlp.c_fc, mlp.gelu), mlp.c_proj.weight, mlp.c_proj.bias)


def _is_causal_mask(mask: Tensor, length: int) -> bool:
    mask = mask[:length, :length]
    if mask.dtype == torch.bool:
        return torch.equal(mask.cpu(), torch.ones(length, length, dtype=torch.bool).triu(1))
    return torch.equal(mask.float().cpu(), torch.full((length, length), float("-inf")).triu(1))


def text_fast_path_blocker(model: nn.Module, length: int) -> str | None:
    """Why the SDPA text path cannot run ``model``'s text tower on ``length`` tokens (None: it can)."""
    if not has_split_text(model):
        return f"{type(model).__name__} is not open_clip's CLIP (its text tower pools and projects in one step)"
    pool = getattr(model, "text_pool_type", None)
    if pool not in ("argmax", "eos"):
        return f"text_pool_type {pool!r} (only 'argmax' and 'eos' pool one token per text)"
    if pool == "eos" and getattr(model, "text_eos_id", None) is None:
        return "text_pool_type 'eos' without text_eos_id"
    if getattr(model, "attn_mask", None) is None:
        return "no causal attention mask (a bidirectional text tower)"
    if not _is_causal_mask(model.attn_mask, length):
        return "attn_mask is not the plain causal mask"
    return _blocks_unsupported(model.transformer)


def image_fast_path_blocker(visual: nn.Module) -> str | None:
    """Why the SDPA image path cannot run ``visual`` (None: it can)."""
    if not has_split_vision(visual):
        return f"visual is {type(visual).__name__} (not open_clip's VisionTransformer, or it outputs tokens)"
    if getattr(visual, "attn_pool", None) is not None:
        return "attentional pooler"
    if visual.pool_type not in ("tok", "avg"):
        return f"pool_type {visual.pool_type!r}"
    return _blocks_unsupported(visual.transformer)
