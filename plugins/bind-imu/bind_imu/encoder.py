"""The IMU trunk: a kernel-8 convolution stem over time, implemented as ImageBind does (unfold + Linear)
so its weights load unchanged, then CLS + learned positions and a :class:`bindcore.nn.Transformer`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bindcore.nn import Transformer
from bindcore.nn.encoders import STEM_LN_EPS


class ImuEncoder(nn.Module):
    """``(B, C, T)`` → CLS feature ``(B, width)``.

    The stem cuts time into non-overlapping ``patch_size``-step patches and maps each channel-major
    ``C·patch_size`` vector (ch0 t0..t7, ch1 t0..t7, …) through ``proj`` (Linear, no bias). That equals
    ``nn.Conv1d(C, width, kernel_size=patch_size, stride=patch_size, bias=False)`` with weight
    ``proj.weight.reshape(width, C, patch_size)`` (tested); the Linear form keeps ImageBind's
    ``imu_stem.proj.weight`` of shape ``(width, C·patch_size)``. Then LayerNorm (eps 1e-5, as the reference
    stem), a CLS token, the encoder's own learned ``pos_embed`` and the trunk (``add_bias_kv``, as ImageBind).
    """

    def __init__(self, *, in_chans: int, num_steps: int, patch_size: int, width: int, num_layers: int,
                 num_heads: int, drop_path: float = 0.0):
        super().__init__()
        if num_steps % patch_size:
            raise ValueError(f"num_steps {num_steps} is not a multiple of patch_size {patch_size}")
        self.in_chans = in_chans
        self.num_steps = num_steps
        self.patch_size = patch_size
        self.proj = nn.Linear(in_chans * patch_size, width, bias=False)
        self.stem_norm = nn.LayerNorm(width, eps=STEM_LN_EPS)
        # Initialisation as ImageBind's IMU preprocessor: CLS ~ N(0,1)·width^-0.5, positions ~ N(0, 0.01).
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * width**-0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + num_steps // patch_size, width) * 0.01)
        self.trunk = Transformer(width, num_layers, num_heads, drop_path=drop_path, add_bias_kv=True)

    def patchify(self, x: Tensor) -> Tensor:
        """``(B, C, T)`` → ``(B, T/patch, C·patch)`` channel-major patch vectors."""
        batch = x.shape[0]
        patches = x.unfold(-1, self.patch_size, self.patch_size)  # (B, C, T/p, p)
        return patches.permute(0, 2, 1, 3).reshape(batch, patches.shape[2], self.in_chans * self.patch_size)

    def tokens(self, x: Tensor) -> Tensor:
        """``(B, C, T)`` → ``(B, 1 + T/patch, width)`` tokens before the trunk."""
        if x.ndim != 3 or tuple(x.shape[1:]) != (self.in_chans, self.num_steps):
            raise ValueError(f"expected input of shape (B, {self.in_chans}, {self.num_steps}), got {tuple(x.shape)}")
        patches = self.stem_norm(self.proj(self.patchify(x)))
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

    def forward(self, x: Tensor) -> Tensor:
        return self.trunk(self.tokens(x), first_token_only=True)[:, 0]
