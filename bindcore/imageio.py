"""Reading and reshaping single-channel 2-D maps (depth, thermal, any grayscale sensor image).

Modality-agnostic helpers shared by the 1-channel image plugins: every function takes the raw *item*
it works on so that a problem raises :class:`bindcore.InputError` naming that item and a fix.
Nothing here guesses what values mean (units, ranges); that is each plugin's job.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bindcore.errors import InputError

#: File suffixes read through Pillow (``.npy`` is read by :func:`read_npy`).
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".pnm"})
#: Smallest accepted side: a 1-pixel-wide map carries no spatial structure and is almost surely a mistake.
MIN_SIDE = 2


def as_item_list(inputs: Any, *, where: str) -> list[Any]:
    """The items of a batch; rejects a single path/array/tensor passed where a sequence of items belongs."""
    if isinstance(inputs, (str, bytes, os.PathLike, np.ndarray, Tensor)):
        raise InputError(inputs, f"{where}.preprocess takes a sequence of items, not a single item",
                         fix="wrap it in a list: preprocess([item]), or list(batch) for a stacked batch")
    if not isinstance(inputs, Sequence):
        inputs = list(inputs)
    return list(inputs)


def is_path(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike))


def read_npy(item: Any) -> np.ndarray:
    """Load a ``.npy`` file (no pickles) or raise ``InputError``."""
    path = Path(os.fspath(item))
    if not path.is_file():
        raise InputError(item, "file not found", fix="check the path")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(item, f"cannot read as .npy: {error}", fix="save arrays with numpy.save") from None


def read_gray_image(item: Any) -> np.ndarray:
    """Decode an image file into a 2-D array, keeping its bit depth.

    Returns ``uint8`` (8-bit gray), ``uint16`` (16-bit gray, also Pillow's 32-bit ``I`` mode when every value
    fits) or ``float32`` (``F`` mode). Colour files whose channels are all equal (e.g. LLVIP's infrared JPEGs,
    gray images saved as RGB) become one channel; an alpha channel is dropped. Anything else raises
    ``InputError``: a false-colour map cannot be turned back into intensities.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(os.fspath(item))
    if not path.is_file():
        raise InputError(item, "file not found", fix="check the path")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
                mode = image.mode
            array = np.array(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputError(item, f"cannot decode image file: {error}",
                         fix="the file is corrupt or not an image; re-export it") from None
    if mode.startswith("I;16"):
        return array.astype(np.uint16, copy=False)
    if mode == "I":
        if array.size and (array.min() < 0 or array.max() > np.iinfo(np.uint16).max):
            raise InputError(item, "32-bit integer image with values outside 0..65535",
                             fix="save it as a 16-bit PNG/TIFF or pass a float array")
        return array.astype(np.uint16)
    if mode == "F":
        return array.astype(np.float32, copy=False)
    if mode == "L":
        return array
    if mode in ("LA", "RGB", "RGBA"):
        colour = array[..., :1] if mode == "LA" else array[..., :3]
        if not (colour == colour[..., :1]).all():
            raise InputError(item, f"{mode} image whose colour channels differ (a false-colour or RGB image?)",
                             fix="pass the raw single-channel sensor image")
        return np.ascontiguousarray(colour[..., 0])
    raise InputError(item, f"unsupported image mode {mode!r}", fix="use an 8/16-bit grayscale PNG or TIFF")


def to_numpy(item: Any, value: Tensor | np.ndarray) -> np.ndarray:
    """A tensor's values as a NumPy array on the CPU (detached); arrays pass through."""
    if isinstance(value, Tensor):
        if value.is_complex():
            raise InputError(item, "complex tensor", fix="pass real values")
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def single_channel(item: Any, array: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(1, H, W)`` → ``(H, W)``; anything else (colour, batches, 1-D) raises ``InputError``."""
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        hint = ("it has several channels; pass one channel of shape (H, W) or (1, H, W)"
                if array.ndim == 3 else "expected shape (H, W) or (1, H, W)")
        raise InputError(item, f"wrong shape {tuple(array.shape)}: {hint}",
                         fix="for a stacked batch pass list(batch); for channel-last data use array[..., 0]")
    if min(array.shape) < MIN_SIDE:
        raise InputError(item, f"image of size {array.shape[0]}x{array.shape[1]} is too small "
                               f"(each side needs at least {MIN_SIDE} pixels)", fix="pass the full-size map")
    return array


def require_finite(item: Any, array: np.ndarray) -> None:
    """Raise ``InputError`` if a float array holds NaN or ±Inf (saying how many pixels)."""
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            raise InputError(item, f"{int(bad.sum())} of {array.size} values are NaN or infinite",
                             fix="replace them (e.g. numpy.nan_to_num) or mark them invalid")


def resize_center_crop(image: Tensor, size: int) -> Tensor:
    """Resize a ``(H, W)`` float map so its shorter side is ``size`` (bilinear, antialiased when shrinking),
    then take the central ``size``×``size`` crop. A map already ``size``×``size`` is returned unchanged."""
    height, width = image.shape[-2:]
    if (height, width) == (size, size):
        return image
    scale = size / min(height, width)
    new_h = size if height <= width else max(size, math.floor(height * scale + 0.5))
    new_w = size if width < height else max(size, math.floor(width * scale + 0.5))
    resized = F.interpolate(image[None, None], size=(new_h, new_w), mode="bilinear", align_corners=False,
                            antialias=scale < 1)[0, 0]
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top:top + size, left:left + size]
