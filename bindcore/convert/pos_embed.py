"""Resizing a ViT's learned position embeddings to another image size, the way ImageBind does.

ImageBind (``multimodal_preprocessors.py``, spec §4.3) resizes the patch grid of its vision position
embedding with ``F.interpolate(mode="bicubic", scale_factor=sqrt(N_new / N_old))``, without antialiasing
and keeping the CLS position. open_clip's own ``resize_pos_embed`` antialiases (a different bicubic
kernel), so reproducing ImageBind's numbers at e.g. 280 px needs this function instead.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_pos_embed_like_imagebind(pos_embed: Tensor, grid: tuple[int, int], *, num_prefix_tokens: int = 1) -> Tensor:
    """``(prefix + h·w, D)`` position embeddings of a square grid → ``(prefix + grid[0]·grid[1], D)``.

    Returns the input unchanged when the grid already matches. For square targets the reference's
    ``scale_factor`` formulation is used so results match it bit for bit; other grids use ``size``.
    """
    prefix, patches = pos_embed[:num_prefix_tokens], pos_embed[num_prefix_tokens:]
    old = math.isqrt(patches.shape[0])
    if old * old != patches.shape[0]:
        raise ValueError(f"{patches.shape[0]} position embeddings do not form a square grid")
    if tuple(grid) == (old, old):
        return pos_embed
    width = patches.shape[-1]
    image = patches.reshape(1, old, old, width).permute(0, 3, 1, 2)
    if grid[0] == grid[1]:
        scale = math.sqrt(grid[0] * grid[1] / (old * old))
        resized = F.interpolate(image.float(), scale_factor=scale, mode="bicubic", align_corners=False)
        if tuple(resized.shape[-2:]) != tuple(grid):  # rounding of the scale factor; fall back to exact size
            resized = F.interpolate(image.float(), size=tuple(grid), mode="bicubic", align_corners=False)
    else:
        resized = F.interpolate(image.float(), size=tuple(grid), mode="bicubic", align_corners=False)
    resized = resized.to(pos_embed.dtype).permute(0, 2, 3, 1).reshape(grid[0] * grid[1], width)
    return torch.cat([prefix, resized], dim=0)
