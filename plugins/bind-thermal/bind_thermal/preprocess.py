"""Thermal preprocessing: decode → one channel → scale to [0, 1] → resize/crop → optional standardisation.
Pure functions of (item, config): CPU only, no randomness."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bind_thermal.config import ThermalConfig
from bindcore.errors import InputError
from bindcore.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    as_item_list,
    is_path,
    read_gray_image,
    read_npy,
    require_finite,
    resize_center_crop,
    single_channel,
    to_numpy,
)

#: Integer dtypes with a defined full scale; others (int32, int64, …) are ambiguous and rejected.
FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def load_array(item: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """One item → a 2-D array with its original dtype; files over ``max_pixels`` are refused from their header."""
    if is_path(item):
        suffix = Path(os.fspath(item)).suffix.lower()
        if suffix == ".npy":
            array = read_npy(item, max_pixels)
        elif suffix in IMAGE_SUFFIXES:
            array = read_gray_image(item, max_pixels)
        else:
            raise InputError(item, f"unsupported file type {suffix or '(none)'!r}",
                             fix="use an 8/16-bit grayscale PNG or TIFF, or a .npy array")
    elif isinstance(item, (np.ndarray, Tensor)):
        array = to_numpy(item, item)
    else:
        raise InputError(item, f"unsupported thermal input type {type(item).__name__}",
                         fix="pass a path, a numpy array or a torch tensor")
    return single_channel(item, array)


def scale_unit(item: Any, array: np.ndarray, config: ThermalConfig) -> np.ndarray:
    """Scale to [0, 1] float32 as configured (``scaling``)."""
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        raise InputError(item, f"unsupported dtype {array.dtype}",
                         fix="pass uint8/uint16 intensities or floats in [0, 1]")
    require_finite(item, array)
    if config.scaling == "dtype":
        if np.issubdtype(array.dtype, np.floating):
            low, high = float(array.min()), float(array.max())
            if low < 0 or high > 1:
                raise InputError(item, f"float values span [{low:.4g}, {high:.4g}], outside [0, 1]",
                                 fix="scale floats to [0, 1] or use scaling='minmax'/'percentile'")
            return array.astype(np.float32)
        if array.dtype not in FULL_SCALE:
            raise InputError(item, f"dtype {array.dtype} has no defined full scale",
                             fix="convert to uint8/uint16, floats in [0, 1], or use scaling='minmax'")
        # float32 division, like torchvision's ToTensor (uint8 / 255): bit-identical to the reference inputs.
        return array.astype(np.float32) / np.float32(FULL_SCALE[array.dtype])
    values = array.astype(np.float64)
    peak = np.abs(values).max()
    if peak > 0:  # min-max is scale-free; pre-dividing keeps (max - min) finite for values near float64's max
        values = values / peak
    if config.scaling == "percentile":
        low, high = np.percentile(values, config.percentiles)
    else:
        low, high = values.min(), values.max()
    if high <= low:  # a flat frame (e.g. lens cap) carries no contrast: map it to 0
        return np.zeros(values.shape, np.float32)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def preprocess_one(item: Any, config: ThermalConfig) -> Tensor:
    """One raw thermal item → ``(1, image_size, image_size)`` float32."""
    unit = scale_unit(item, load_array(item, config.max_pixels), config)
    # interpolation can overshoot [0, 1] by float rounding; the range is part of the contract
    image = resize_center_crop(torch.from_numpy(unit), config.image_size).clamp_(0.0, 1.0)
    if config.normalization == "standardize":
        image = (image - config.norm_mean) / config.norm_std
    return image.unsqueeze(0).contiguous()


def preprocess_batch(inputs: Sequence[Any], config: ThermalConfig) -> Tensor:
    items = as_item_list(inputs, where="thermal")
    if not items:
        return torch.zeros(0, 1, config.image_size, config.image_size)
    return torch.stack([preprocess_one(item, config) for item in items])
