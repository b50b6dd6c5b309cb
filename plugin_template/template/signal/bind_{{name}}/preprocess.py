"""Raw {{name}} items → one ``(B, NUM_CHANNELS, num_steps)`` float32 tensor.

What ``preprocess`` may read (bindcore's rule for every modality): the raw items it is given, and the files
those items name. Nothing else: no network, no globals (module caches, environment variables), no
randomness (augmentation belongs to the trainer), no device moves (``Modality.to_model_input`` does that),
and no statistics over the batch: each item's tensor depends only on that item and the config.

Accepted raw input (CHANGE THIS for your sensor): one recording of finite numbers, shape
(NUM_CHANNELS, T) (channels first) with 2 <= T <= MAX_STEPS, given as a numpy array, a nested list, or the
path of a ``.npy`` file holding one. Each recording is resampled to ``num_steps`` time steps (linear;
antialiased only when shrinking) and divided by ``value_scale``: a fixed constant rather than per-recording
standardisation keeps absolute levels and makes each item's tensor independent of the rest of the batch.
A real sensor has a sample rate: you will likely cut fixed-duration windows instead of stretching.
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

from {{package}}.config import NUM_CHANNELS, {{Name}}Config

MAX_STEPS = 1_000_000


def load_{{name}}(item: Any) -> np.ndarray:
    """Validate one raw item and return it as a new float32 (NUM_CHANNELS, T) array (never a view of the
    caller's data)."""
    if is_path(item):
        if Path(item).suffix.lower() != ".npy":  # CHANGE THIS to read your sensor's file format
            raise InputError(item, "unsupported file type", fix="save the recording with numpy.save (.npy) or "
                                                                "pass it")
        item_values = read_npy(item)
    else:
        item_values = item
    try:
        values = np.array(item_values, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(item, "not a 2-D array of numbers",
                         fix=f"pass a numpy array or nested list ({NUM_CHANNELS}, T), or a .npy path") from None
    if values.ndim != 2 or values.shape[0] != NUM_CHANNELS:
        transposed = values.ndim == 2 and values.shape[1] == NUM_CHANNELS
        raise InputError(item, f"expected a ({NUM_CHANNELS}, T) recording, got shape {values.shape}",
                         fix="transpose it: channels come first" if transposed else
                         f"pass one recording per item with {NUM_CHANNELS} channels")
    if not 2 <= values.shape[1] <= MAX_STEPS:
        raise InputError(item, f"recordings must have between 2 and {MAX_STEPS} time steps, got {values.shape[1]}")
    require_finite(item, values)
    return values


def resample(values: np.ndarray, num_steps: int) -> Tensor:
    """(C, T) → (C, num_steps), linear in time. Done as a bilinear resize of the (C, T) image to
    (C, num_steps): the channel axis keeps its size, so channels never mix, and antialiasing is available."""
    x = torch.from_numpy(values)[None, None]
    return F.interpolate(x, size=(values.shape[0], num_steps), mode="bilinear", align_corners=False,
                         antialias=values.shape[1] > num_steps)[0, 0]


def preprocess_{{name}}(inputs: Sequence[Any], config: {{Name}}Config) -> Tensor:
    """A list of raw items → (B, NUM_CHANNELS, num_steps) float32. Items are processed independently."""
    rows = [resample(load_{{name}}(item), config.num_steps) / config.value_scale
            for item in as_item_list(inputs, where="{{name}}")]
    if not rows:
        return torch.zeros(0, NUM_CHANNELS, config.num_steps)
    return torch.stack(rows).contiguous()
