"""Depth preprocessing: decode → metres → validate → in-fill invalid pixels → disparity → resize/crop →
normalise. Pure functions of (item, config): CPU only, no randomness."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from bind_depth.config import (
    OMNIVORE_DISPARITY_MAX,
    OMNIVORE_DISPARITY_MIN,
    OMNIVORE_MEAN,
    OMNIVORE_STD,
    DepthConfig,
)
from bindcore.errors import InputError
from bindcore.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    as_item_list,
    is_path,
    read_gray_image,
    read_npy,
    resize_center_crop,
    single_channel,
    to_numpy,
)


@dataclass(frozen=True, repr=False)
class DepthInput:
    """One depth map with per-item settings that override the modality's config.

    ``data`` is anything ``preprocess`` accepts on its own (a path, an array, a tensor).
    ``metres_per_unit``: what one unit of ``data`` is in metres (e.g. 0.001 for millimetres, 0.0002 for
    TUM's 5000-per-metre PNGs); required for integer arrays, defaults to the config's
    ``png_metres_per_unit`` for PNGs and to 1 (metres) for float arrays/tensors/``.npy``.
    ``focal_length`` (pixels) and ``baseline`` (metres) are this camera's, for the disparity conversion.
    ``encoding="sunrgbd"``: ``data`` is a SUN RGB-D depth PNG (millimetres rotated by 3 bits), decoded with
    :func:`decode_sunrgbd_depth` when preprocessed, so a dataset reader can hand over paths, not decoded arrays.
    """

    data: Any
    metres_per_unit: float | None = None
    focal_length: float | None = None
    baseline: float | None = None
    encoding: Literal["plain", "sunrgbd"] = "plain"

    def __post_init__(self) -> None:
        for field in ("metres_per_unit", "focal_length", "baseline"):
            value = getattr(self, field)
            if value is not None and not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise InputError(self, f"{field} must be a positive finite number, got {value!r}")
        if isinstance(self.data, DepthInput):
            raise InputError(self, "DepthInput cannot wrap another DepthInput")
        if self.encoding not in ("plain", "sunrgbd"):
            raise InputError(self, f"unknown encoding {self.encoding!r}", fix="use 'plain' or 'sunrgbd'")
        if self.encoding == "sunrgbd" and (not is_path(self.data) or self.metres_per_unit is not None):
            raise InputError(self, "encoding='sunrgbd' needs the path of a SUN RGB-D depth PNG and no "
                                   "metres_per_unit (the encoding fixes the unit)")

    def __repr__(self) -> str:
        from bindcore.errors import describe_item

        extras = "".join(f", {k}={getattr(self, k)!r}" for k in ("metres_per_unit", "focal_length", "baseline")
                         if getattr(self, k) is not None)
        if self.encoding != "plain":
            extras += f", encoding={self.encoding!r}"
        return f"DepthInput({describe_item(self.data)}{extras})"


def decode_sunrgbd_depth(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a SUN RGB-D depth PNG as float32 metres (0 = invalid).

    SUN RGB-D stores millimetres rotated left by 3 bits within 16 bits; its toolbox undoes that with
    ``bitor(bitshift(d, -3), bitshift(d, 13))`` before dividing by 1000. Pass the result as a metres array.
    """
    stored = read_gray_image(path, max_pixels)
    if stored.dtype != np.uint16:
        raise InputError(path, f"SUN RGB-D depth PNGs are 16-bit, this one is {stored.dtype}")
    millimetres = (stored >> 3) | (stored << 13)  # uint16 arithmetic: the rotation wraps within 16 bits
    return millimetres.astype(np.float32) / 1000


def _integer_to_metres(item: Any, array: np.ndarray, metres_per_unit: float | None, what: str) -> np.ndarray:
    if metres_per_unit is None:
        raise InputError(item, f"{what} of dtype {array.dtype} has no unit",
                         fix="wrap it as DepthInput(data, metres_per_unit=0.001) for millimetres, "
                             "or pass float metres")
    if np.issubdtype(array.dtype, np.signedinteger) and array.size and array.min() < 0:
        raise InputError(item, "negative depth values", fix="depth must be >= 0 (0 marks invalid pixels)")
    return array.astype(np.float64) * metres_per_unit


def load_metres(item: Any, config: DepthConfig) -> tuple[np.ndarray, float, float]:
    """Decode one item to a 2-D float array in metres (0 = invalid, NaN/Inf kept for the validator),
    with the focal length and baseline that apply to it."""
    source, override = (item.data, item) if isinstance(item, DepthInput) else (item, None)
    metres_per_unit = override.metres_per_unit if override else None
    focal = override.focal_length if override and override.focal_length else config.focal_length
    baseline = override.baseline if override and override.baseline else config.baseline

    if override and override.encoding == "sunrgbd":
        array, what = decode_sunrgbd_depth(source, config.max_pixels), "SUN RGB-D depth"
    elif is_path(source):
        suffix = Path(os.fspath(source)).suffix.lower()
        if suffix == ".npy":
            array, what = read_npy(source, config.max_pixels), ".npy array"
        elif suffix in IMAGE_SUFFIXES:
            array = read_gray_image(source, config.max_pixels)
            if np.issubdtype(array.dtype, np.integer):
                if array.dtype != np.uint16 and metres_per_unit is None:
                    raise InputError(item, f"{array.dtype} image cannot hold millimetre depth",
                                     fix="save depth as a 16-bit PNG, or give DepthInput(path, metres_per_unit=...)")
                metres_per_unit = metres_per_unit or config.png_metres_per_unit
            what = "image"
        else:
            raise InputError(item, f"unsupported file type {suffix or '(none)'!r}",
                             fix="use a 16-bit PNG in millimetres or a float .npy in metres")
    elif isinstance(source, (np.ndarray, Tensor)):
        array, what = to_numpy(item, source), "array"
    else:
        raise InputError(item, f"unsupported depth input type {type(source).__name__}",
                         fix="pass a path, a numpy array, a torch tensor or a DepthInput")

    array = single_channel(item, array)
    if array.dtype == np.bool_:
        raise InputError(item, "boolean array is not a depth map", fix="pass depth values")
    if np.issubdtype(array.dtype, np.integer):
        metres = _integer_to_metres(item, array, metres_per_unit, what)
    elif np.issubdtype(array.dtype, np.floating):
        metres = array.astype(np.float64) * (metres_per_unit or 1.0)
    else:
        raise InputError(item, f"unsupported dtype {array.dtype}", fix="pass float metres or integer millimetres")
    return metres, focal, baseline


def validate(item: Any, metres: np.ndarray, config: DepthConfig) -> np.ndarray:
    """Check values; returns the mask of valid pixels. NaN/Inf are rejected unless configured as invalid."""
    finite = np.isfinite(metres)
    if not finite.all():
        if not config.nonfinite_as_invalid:
            raise InputError(item, f"{int((~finite).sum())} of {metres.size} depth values are NaN or infinite",
                             fix="set them to 0 (invalid) or use nonfinite_as_invalid=True")
        metres[~finite] = 0.0
    if (metres < 0).any():
        raise InputError(item, f"{int((metres < 0).sum())} negative depth values",
                         fix="depth must be >= 0 (0 marks invalid pixels); is this an inverse-depth map?")
    valid = metres > 0
    if not valid.any():
        raise InputError(item, "every pixel is invalid (depth 0)", fix="check the sensor output / unit")
    return valid


def infill_nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Give every invalid pixel the value of its nearest valid pixel (Euclidean; ties resolved by SciPy's
    exact distance transform, deterministically)."""
    if valid.all():
        return values
    from scipy.ndimage import distance_transform_edt

    rows, cols = distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return values[rows, cols]


def depth_to_disparity(metres: np.ndarray, focal_length: float, baseline: float, min_depth: float,
                       max_depth: float) -> np.ndarray:
    """``focal_length * baseline / clip(depth, min_depth, max_depth)`` (Omnivore's SUN RGB-D conversion).
    Strictly decreasing in depth on [min_depth, max_depth]."""
    return focal_length * baseline / np.clip(metres, min_depth, max_depth)


def normalize(x: Tensor, config: DepthConfig) -> Tensor:
    if config.normalization == "omnivore":
        x = x.clamp(OMNIVORE_DISPARITY_MIN, OMNIVORE_DISPARITY_MAX) / OMNIVORE_DISPARITY_MAX
        return (x - OMNIVORE_MEAN) / OMNIVORE_STD
    if config.normalization == "standardize":
        return (x - config.norm_mean) / config.norm_std
    return x


def preprocess_one(item: Any, config: DepthConfig) -> Tensor:
    """One raw depth item → ``(1, image_size, image_size)`` float32."""
    metres, focal, baseline = load_metres(item, config)
    valid = validate(item, metres, config)
    if config.infill == "nearest":
        metres = infill_nearest(metres, valid)
        valid = np.ones_like(valid)
    if config.representation == "disparity":
        values = np.where(valid, depth_to_disparity(metres, focal, baseline, config.min_depth, config.max_depth), 0)
    else:  # clipping bounds the input the encoder sees (no overflow to Inf/NaN for absurd depths)
        values = np.where(valid, np.clip(metres, config.min_depth, config.max_depth), 0)
    image = resize_center_crop(torch.from_numpy(values.astype(np.float32)), config.image_size)
    return normalize(image, config).unsqueeze(0).contiguous()


def preprocess_batch(inputs: Sequence[Any], config: DepthConfig) -> Tensor:
    items = as_item_list(inputs, where="depth")
    if not items:
        return torch.zeros(0, 1, config.image_size, config.image_size)
    return torch.stack([preprocess_one(item, config) for item in items])
