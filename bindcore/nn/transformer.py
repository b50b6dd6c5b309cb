"""A pre-norm transformer whose parameter layout matches ImageBind's trunks.

The layout (packed ``in_proj_weight``, optional learned ``bias_k``/``bias_v`` appended as one extra
key/value token, ``norm_1``/``norm_2``, ``mlp.fc1``/``mlp.fc2``) lets ImageBind checkpoints load by
renaming keys only, while attention itself runs through ``F.scaled_dot_product_attention``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from bindcore.nn.linear import linear, linear_act

TRUNK_LN_EPS = 1e-6


class Attention(nn.Module):
    """Multi-head self-attention, batch-first, with optional learned extra key/value (``add_bias_kv``)."""

    def __init__(self, dim: int, num_heads: int, *, add_bias_kv: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, dim))
            self.bias_v = nn.Parameter(torch.empty(1, 1, dim))
        else:
            self.bias_k = self.bias_v = None
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)
        if add_bias_kv:
            nn.init.xavier_normal_(self.bias_k)
            nn.init.xavier_normal_(self.bias_v)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, *, first_token_only: bool = False) -> Tensor:
        """``(B, L, D)`` → ``(B, L, D)``; with ``first_token_only`` only token 0 queries: ``(B, 1, D)``."""
        batch, dim = x.shape[0], x.shape[2]
        if first_token_only:
            # Keys/values still come from every token; only the query projection is cut to one row.
            bias = self.in_proj_bias
            q = linear(x[:, :1], self.in_proj_weight[:dim], bias[:dim])
            k, v = linear(x, self.in_proj_weight[dim:], bias[dim:]).chunk(2, dim=-1)
            if attn_mask is not None:
                attn_mask = attn_mask[..., :1, :]
        else:
            q, k, v = linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(batch, 1, dim)], dim=1)
            v = torch.cat([v, self.bias_v.expand(batch, 1, dim)], dim=1)
            if attn_mask is not None:
                attn_mask = F.pad(attn_mask, (0, 1))

        def heads(t: Tensor) -> Tensor:
            return t.reshape(batch, t.shape[1], self.num_heads, dim // self.num_heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=attn_mask)
        out = out.transpose(1, 2).reshape(batch, q.shape[1], dim)
        return linear(out, self.out_proj.weight, self.out_proj.bias)


class Block(nn.Module):
    """``x + DropPath(attn(norm_1(x)))`` then ``x + DropPath(mlp(norm_2(x)))``."""

    def __init__(self, dim: int, num_heads: int, *, drop_path: float = 0.0, add_bias_kv: bool = False,
                 mlp_ratio: float = 4.0):
        super().__init__()
        self.norm_1 = nn.LayerNorm(dim, eps=TRUNK_LN_EPS)
        self.attn = Attention(dim, num_heads, add_bias_kv=add_bias_kv)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm_2 = nn.LayerNorm(dim, eps=TRUNK_LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)
        for layer in (self.mlp.fc1, self.mlp.fc2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, first_token_only: bool = False) -> Tensor:
        """``first_token_only``: return only token 0's output ``(B, 1, D)`` (attending to every token), skipping
        the other rows' query, output projection and MLP; exact for callers that read token 0 only."""
        if first_token_only:
            x = x[:, :1] + self.drop_path(self.attn(self.norm_1(x), attn_mask, first_token_only=True))
        else:
            x = x + self.drop_path(self.attn(self.norm_1(x), attn_mask))
        return x + self.drop_path(self._mlp(self.norm_2(x)))

    def _mlp(self, x: Tensor) -> Tensor:
        if self.training:  # dropout layers active: the modules' own forward
            return self.mlp(x)
        mlp = self.mlp  # timm Mlp: fc1 → act → drop → norm (Identity) → fc2 → drop; drops are no-ops in eval
        hidden = mlp.norm(linear_act(x, mlp.fc1, mlp.act))
        return linear(hidden, mlp.fc2.weight, mlp.fc2.bias)


class Transformer(nn.Module):
    """A stack of :class:`Block` with linearly increasing drop path and optional pre-LayerNorm."""

    def __init__(self, dim: int, depth: int, num_heads: int, *, drop_path: float = 0.0,
                 add_bias_kv: bool = False, pre_norm: bool = False):
        super().__init__()
        self.pre_norm = nn.LayerNorm(dim, eps=TRUNK_LN_EPS) if pre_norm else nn.Identity()
        rates = torch.linspace(0, drop_path, depth).tolist() if depth else []
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, drop_path=rate, add_bias_kv=add_bias_kv) for rate in rates
        )
        self.grad_checkpointing = False

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, *, first_token_only: bool = False) -> Tensor:
        """``(B, L, D)`` → ``(B, L, D)``, or ``(B, 1, D)`` with ``first_token_only`` (a CLS-pooling caller: the
        last block then computes token 0 only, which is exact and saves most of that block)."""
        x = self.pre_norm(x)
        last = len(self.blocks) - 1
        for index, block in enumerate(self.blocks):
            only_first = first_token_only and index == last
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, attn_mask, only_first, use_reentrant=False)
            else:
                x = block(x, attn_mask, only_first)
        return x[:, :1] if first_token_only else x
