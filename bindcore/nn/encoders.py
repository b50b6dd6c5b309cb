"""Modality-agnostic encoder parts shared by plugins: a patch ViT over any C-channel 2-D signal
and the CLS → LayerNorm → linear projection head. Parameter names follow ImageBind's layout."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bindcore.nn.transformer import TRUNK_LN_EPS, Transformer

STEM_LN_EPS = 1e-5  # ImageBind's stem norms use PyTorch's default eps, unlike its trunk norms


def as_pair(value: int | tuple[int, int]) -> tuple[int, int]:
    """``k`` → ``(k, k)``; a ``(height, width)`` pair stays as it is."""
    if isinstance(value, int):
        return (value, value)
    height, width = value
    return (int(height), int(width))


def patch_grid(size: tuple[int, int], kernel: int | tuple[int, int],
               stride: int | tuple[int, int]) -> tuple[int, int]:
    """Number of patches along each axis of a conv stem without padding (``kernel``/``stride``: a side or a
    ``(height, width)`` pair)."""
    (kernel_h, kernel_w), (stride_h, stride_w) = as_pair(kernel), as_pair(stride)
    return ((size[0] - kernel_h) // stride_h + 1, (size[1] - kernel_w) // stride_w + 1)


class PatchEncoder(nn.Module):
    """Conv patch stem (+ LayerNorm) → CLS + learned positions → transformer; returns the CLS feature.

    ImageBind's audio, depth and thermal trunks are exactly this with ``add_bias_kv=True``. ``patch_size``
    and ``stride`` are a side or a ``(height, width)`` pair: a 1-D signal ``(B, C, T)`` is the map
    ``(B, C, 1, T)`` with ``(1, p)`` patches (see :class:`bindcore.signal_modality.SignalModality`).
    """

    def __init__(self, *, in_chans: int, input_size: tuple[int, int], patch_size: int | tuple[int, int],
                 stride: int | tuple[int, int], width: int, depth: int, num_heads: int, drop_path: float = 0.0,
                 add_bias_kv: bool = True, stem_norm: bool = True):
        super().__init__()
        self.input_size = tuple(input_size)
        if any(side < patch for side, patch in zip(self.input_size, as_pair(patch_size), strict=True)):
            raise ValueError(f"input size {self.input_size} is smaller than patch size {patch_size}")
        self.proj = nn.Conv2d(in_chans, width, kernel_size=patch_size, stride=stride, bias=False)
        self.stem_norm = nn.LayerNorm(width, eps=STEM_LN_EPS) if stem_norm else nn.Identity()
        self.grid = patch_grid(self.input_size, patch_size, stride)
        num_tokens = 1 + self.grid[0] * self.grid[1]
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * width**-0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, num_tokens, width) * width**-0.5)
        self.trunk = Transformer(width, depth, num_heads, drop_path=drop_path, add_bias_kv=add_bias_kv)

    def tokens(self, x: Tensor) -> Tensor:
        """Input ``(B, C, H, W)`` → tokens ``(B, 1 + patches, width)`` before the trunk."""
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"expected input of spatial size {self.input_size}, got {tuple(x.shape[-2:])}")
        patches = self.stem_norm(self.proj(x).flatten(2).transpose(1, 2))
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

    def forward(self, x: Tensor) -> Tensor:
        """Input ``(B, C, H, W)`` → CLS features ``(B, width)``."""
        return self.trunk(self.tokens(x), first_token_only=True)[:, 0]


class ProjectionHead(nn.Module):
    """CLS feature → LayerNorm → (dropout) → linear (no bias) → L2-normalised embedding."""

    def __init__(self, width: int, embed_dim: int, *, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=TRUNK_LN_EPS)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj = nn.Linear(width, embed_dim, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        return F.normalize(self.proj(self.dropout(self.norm(h))), dim=-1)


def mean_of_clips(clip_embeddings: Tensor) -> Tensor:
    """``(B, S, D)`` unit rows → ``(B, D)``: the mean of the clips, re-normalised to unit length."""
    return F.normalize(clip_embeddings.mean(dim=1), dim=-1)


def fold_clips(x: Tensor, item_dims: int) -> tuple[Tensor, tuple[int, ...]]:
    """Flatten the leading ``(B, S)`` clip axes of ``x`` whose item has ``item_dims`` dims."""
    lead = tuple(x.shape[: x.ndim - item_dims])
    return x.reshape(math.prod(lead), *x.shape[x.ndim - item_dims:]), lead
