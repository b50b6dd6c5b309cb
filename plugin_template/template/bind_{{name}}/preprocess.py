"""Raw {{name}} input → tensor. Pure functions: no file I/O, no randomness, no device moves, no batch statistics.

Accepted raw input (CHANGE THIS for your sensor): one 2-D map of finite numbers, as a numpy array or a nested
list of shape (H, W) with 2 <= H, W <= MAX_SIDE. Each map is resized to ``grid_size`` x ``grid_size``
(bilinear, antialiased when shrinking) and divided by ``value_scale``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from bindcore import InputError
from torch import Tensor

MAX_SIDE = 4096


def load_{{name}}_map(item: Any) -> np.ndarray:
    """Validate one raw item and return it as a new float32 (H, W) array (never a view of the caller's data)."""
    try:
        values = np.array(item, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(item, "not a 2-D array of numbers", fix="pass a numpy array or nested list (H, W)") from None
    if values.ndim != 2:
        raise InputError(item, f"expected a 2-D map (H, W), got {values.ndim} dimensions",
                         fix="pass one map per item; squeeze channel axes")
    if not (2 <= values.shape[0] <= MAX_SIDE and 2 <= values.shape[1] <= MAX_SIDE):
        raise InputError(item, f"map sides must be between 2 and {MAX_SIDE}, got {values.shape}")
    if not np.isfinite(values).all():
        raise InputError(item, "contains NaN or Inf", fix="fill missing cells (e.g. with 0) before embedding")
    return values


def resize_map(values: np.ndarray, grid_size: int) -> Tensor:
    """(H, W) → (1, grid_size, grid_size); antialias only when shrinking so small maps are not blurred."""
    x = torch.from_numpy(values)[None, None]
    shrinking = values.shape[0] > grid_size or values.shape[1] > grid_size
    return F.interpolate(x, size=(grid_size, grid_size), mode="bilinear", align_corners=False,
                         antialias=shrinking)[0]


def preprocess_{{name}}(inputs: Sequence[Any], *, grid_size: int, value_scale: float) -> Tensor:
    """A list of raw maps → (B, 1, grid_size, grid_size) float32. Items are processed independently."""
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Sequence):
        raise InputError(inputs, "preprocess takes a list of items", fix="wrap a single item in a list")
    rows = [resize_map(load_{{name}}_map(item), grid_size) / value_scale for item in inputs]
    if not rows:
        return torch.zeros(0, 1, grid_size, grid_size)
    return torch.stack(rows).contiguous()
