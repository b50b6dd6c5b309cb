"""Raw image items → 8-bit RGB PIL images, the form ImageBind's transforms start from.

ImageBind does ``PIL.Image.open(path).convert("RGB")``; this module does the same for files and PIL
images of the usual modes, and builds the equivalent image from arrays and tensors. One deliberate
difference: 16-bit images (``I;16*``, and ``I`` images with values above 255) are scaled to 8 bits
(value / 257) instead of PIL's clipping at 255, which turns almost every real 16-bit photo white.
Every problem raises :class:`bindcore.InputError` naming the item.

Array layouts are fixed by type, never guessed from the shape: numpy arrays are ``(H, W)`` or ``(H, W, C)``
(the PIL/numpy convention), torch tensors ``(H, W)`` or ``(C, H, W)`` (the torchvision convention), C in 1..4.
A numpy ``(3, H, W)`` array is therefore an image 3 pixels tall whose last axis must be a channel count, and
a tensor ``(H, W, 3)`` one with H channels: both are rejected (unless the last/first axis happens to be 1..4)
with the ``np.moveaxis``/``permute`` call that fixes them.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from bindcore.errors import InputError
from bindcore.imageio import check_pixel_count, decoded_image

#: Channel count → PIL mode, for arrays and tensors.
_MODES_BY_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_SHAPES = {"HWC": "(H, W) or (H, W, C)", "CHW": "(H, W) or (C, H, W)"}
_LAYOUT_NOTES = {"HWC": "numpy arrays are", "CHW": "torch tensors are"}
_LAYOUT_FIXES = {
    "HWC": "for a channels-first (C, H, W) array pass np.moveaxis(array, 0, -1)",
    "CHW": "for a channels-last (H, W, C) tensor pass tensor.permute(2, 0, 1)",
}
_SIXTEEN_BIT_SCALE = 257.0  # 65535 / 255: maps the 16-bit range exactly onto the 8-bit one
#: Default largest image decoded (pixels): 64 MP holds the largest photos of full-frame cameras (61 MP) and
#: phones (48-50 MP); decoded as RGB that is 192 MB. Pillow warns at 89.5 MP and refuses 179 MP.
DEFAULT_MAX_PIXELS = 64_000_000
_ACCEPTED = "a file path, a PIL image, a uint8 / uint16 / float-in-[0,1] array (HW or HWC), or a tensor (HW or CHW)"


def to_rgb_image(item: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Any accepted raw image item → an RGB ``PIL.Image`` with at least one pixel.

    Files and lazily opened PIL images larger than ``max_pixels`` are refused from their header, before decoding.
    """
    if isinstance(item, (str, os.PathLike)):
        with decoded_image(item, max_pixels) as opened:
            rgb = _nonempty_rgb(item, opened)
            return rgb.copy() if rgb is opened else rgb  # ``opened`` is closed when the block ends
    if isinstance(item, Image.Image):
        return _nonempty_rgb(item, _loaded(item, item, max_pixels))
    if isinstance(item, np.ndarray):
        return _nonempty_rgb(item, _from_array(item, item, layout="HWC"))
    if isinstance(item, torch.Tensor):
        return _nonempty_rgb(item, _from_tensor(item))
    raise InputError(item, f"not an image ({type(item).__name__})", fix=f"pass {_ACCEPTED}")


def _nonempty_rgb(item: Any, image: Image.Image) -> Image.Image:
    width, height = image.size
    if width == 0 or height == 0:
        raise InputError(item, f"empty image ({width}x{height} pixels)", fix="pass an image with at least one pixel")
    return _convert_rgb(item, image)


def _loaded(item: Any, image: Image.Image, max_pixels: int) -> Image.Image:
    """Decode the pixels now (after checking the size), so truncated or corrupt images fail here clearly."""
    check_pixel_count(item, *image.size, max_pixels)
    try:
        image.load()
    except Exception as error:  # Pillow's decoders raise many types on corrupt data
        raise InputError(item, f"truncated or corrupt image data ({type(error).__name__}: {error})",
                         fix="re-download or re-export the image") from None
    return image


def _convert_rgb(item: Any, image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode == "I":
        return _sixteen_bit_to_rgb(item, image)
    if mode == "F":
        values = np.asarray(image)
        if not np.isfinite(values).all():
            raise InputError(item, "float image with NaN or infinite pixels", fix="replace them first")
    with warnings.catch_warnings():
        # Pillow warns about palette images with byte transparency; like ImageBind we drop transparency.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return image.convert("RGB")
        except Exception as error:  # e.g. a corrupt palette; any failure here is bad input
            raise InputError(item, f"cannot convert a {mode!r} image to RGB ({error})",
                             fix="convert it to RGB first") from None


def _sixteen_bit_to_rgb(item: Any, image: Image.Image) -> Image.Image:
    values = np.asarray(image)  # uint16 (I;16*) or int32 (I): 2-4 bytes a pixel, no wider copies
    if image.mode == "I" and values.size and values.min() >= 0 and values.max() <= 255:
        eight_bit = values.astype(np.uint8)  # an 8-bit image stored as 32-bit ints: keep its values
    else:
        eight_bit = _scale_sixteen_bit(np.clip(values, 0, 65535))
    return Image.fromarray(eight_bit, mode="L").convert("RGB")


def _scale_sixteen_bit(values: np.ndarray) -> np.ndarray:
    """0..65535 → round(value / 257) (halves up) in uint32 integers: floor((2 v + 257) / 514), exact."""
    return ((values.astype(np.uint32) * 2 + 257) // 514).astype(np.uint8)


def _from_tensor(item: torch.Tensor) -> Image.Image:
    if item.is_complex():
        raise InputError(item, "complex tensor", fix=f"pass {_ACCEPTED}")
    values = item.detach().cpu()
    if values.dtype in (torch.float16, torch.bfloat16):
        values = values.float()
    return _from_array(item, values.numpy(), layout="CHW")


def _from_array(item: Any, array: np.ndarray, *, layout: Literal["HWC", "CHW"]) -> Image.Image:
    """``layout`` comes from the item's type (numpy: HWC, torch: CHW); a 2-D item is grayscale either way."""
    if array.ndim not in (2, 3):
        raise InputError(item, f"wrong shape {tuple(item.shape)}: expected {_SHAPES[layout]} with C in 1..4",
                         fix="pass one image at a time; for a stacked batch pass list(batch)")
    if array.ndim == 3:
        channel_axis = 0 if layout == "CHW" else -1
        if array.shape[channel_axis] not in _MODES_BY_CHANNELS:
            raise InputError(item, f"wrong shape {tuple(item.shape)}: {_LAYOUT_NOTES[layout]} {_SHAPES[layout]}, "
                                   f"so C = {array.shape[channel_axis]} is not a channel count (1..4)",
                             fix=_LAYOUT_FIXES[layout])
        if layout == "CHW":
            array = np.moveaxis(array, 0, -1)
        if array.shape[-1] == 1:
            array = array[..., 0]
    if 0 in array.shape:
        raise InputError(item, f"empty image (shape {tuple(item.shape)})", fix="pass an image with at least one pixel")
    eight_bit = _to_uint8(item, array)
    mode = "L" if eight_bit.ndim == 2 else _MODES_BY_CHANNELS[eight_bit.shape[-1]]
    return Image.fromarray(np.ascontiguousarray(eight_bit), mode=mode)


def _to_uint8(item: Any, array: np.ndarray) -> np.ndarray:
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind == "b":
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return _scale_sixteen_bit(array)
    if kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise InputError(item, f"{array.dtype} image with values outside 0..255",
                             fix="pass uint8 (0..255), uint16 (0..65535) or floats in [0, 1]")
        return array.astype(np.uint8)
    if kind == "f":
        if not np.isfinite(array).all():
            raise InputError(item, "float image with NaN or infinite pixels", fix="replace them first")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise InputError(item, f"float image with values in [{low:.4g}, {high:.4g}], outside [0, 1]",
                             fix="scale float images to [0, 1] (or pass uint8 values 0..255)")
        # Quantised like an 8-bit file, so a float image and its uint8 twin give the same tensor.
        return np.floor(array.astype(np.float64) * 255.0 + 0.5).astype(np.uint8)
    raise InputError(item, f"unsupported dtype {array.dtype}", fix=f"pass {_ACCEPTED}")
