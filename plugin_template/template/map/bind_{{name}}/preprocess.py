"""Raw {{name}} items → one ``(B, 1, image_size, image_size)`` float32 tensor.

What ``preprocess`` may read (bindcore's rule for every modality): the raw items it is given, and the files
those items name. Nothing else: no network, no globals (module caches, environment variables), no
randomness (augmentation belongs to the trainer), no device moves (``Modality.to_model_input`` does that),
and no statistics over the batch: each item's tensor depends only on that item and the config.

Accepted raw input (CHANGE THIS for your sensor): one 2-D map of finite numbers, shape (H, W) with
2 <= H, W <= MAX_SIDE, given as a numpy array, a nested list, or the path of a ``.npy`` file holding one.
Each map is resized to ``image_size`` x ``image_size`` (bilinear; antialiased only when shrinking, so small
maps are not blurred) and divided by ``value_scale``: a fixed constant rather than per-map standardisation
keeps absolute levels and makes each item's tensor independent of the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from bindcore import InputError
from bindcore.imageio import as_item_list, is_path, read_npy, require_finite
from torch import Tensor

from {{package}}.config import {{Name}}Config

MAX_SIDE = 4096


def load_{{name}}(item: Any) -> np.ndarray:
    """Validate one raw item and return it as a new float32 (H, W) array (never a view of the caller's data)."""
    if is_path(item):
        if Path(item).suffix.lower() != ".npy":  # CHANGE THIS to read your sensor's file format
            raise InputError(item, "unsupported file type", fix="save the map with numpy.save (.npy) or pass it")
        item_values = read_npy(item)
    else:
        item_values = item
    try:
        values = np.array(item_values, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(item, "not a 2-D array of numbers",
                         fix="pass a numpy array or nested list (H, W), or a .npy path") from None
    if values.ndim != 2:
        raise InputError(item, f"expected a 2-D map (H, W), got {values.ndim} dimensions",
                         fix="pass one map per item; squeeze channel axes")
    if not (2 <= values.shape[0] <= MAX_SIDE and 2 <= values.shape[1] <= MAX_SIDE):
        raise InputError(item, f"map sides must be between 2 and {MAX_SIDE}, got {values.shape}")
    require_finite(item, values)
    return values


def resize_map(values: np.ndarray, size: int) -> Tensor:
    """(H, W) → (1, size, size); antialias only when shrinking so small maps are not blurred."""
    x = torch.from_numpy(values)[None, None]
    shrinking = values.shape[0] > size or values.shape[1] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking)[0]


def preprocess_{{name}}(inputs: Sequence[Any], config: {{Name}}Config) -> Tensor:
    """A list of raw items → (B, 1, image_size, image_size) float32. Items are processed independently."""
    size = config.image_size
    rows = [resize_map(load_{{name}}(item), size) / config.value_scale
            for item in as_item_list(inputs, where="{{name}}")]
    if not rows:
        return torch.zeros(0, 1, size, size)
    return torch.stack(rows).contiguous()
