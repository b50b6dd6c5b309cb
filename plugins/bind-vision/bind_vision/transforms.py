"""ImageBind's image transform, step for step (``Resize(224, BICUBIC)`` → ``CenterCrop(224)`` →
``ToTensor()`` → ``Normalize(CLIP mean, std)`` from torchvision, on PIL images):

* resize: the shorter side becomes ``resize_size`` and the longer ``int(resize_size * long / short)``
  (truncated, as torchvision computes it), with PIL's (antialiased) filter; an image already at that
  size is left untouched (torchvision skips the resample then too);
* centre crop: offsets ``int(round((H - S) / 2))`` (Python's round-half-to-even), zero padding if the
  image is smaller than the crop (as torchvision; never happens when ``resize_size >= image_size``);
* ``uint8 / 255`` to float32 CHW, then ``(x - mean) / std`` in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after resizing the shorter side to ``short_side`` (torchvision's rule)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = short_side, int(short_side * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def resize_short_side(image: Image.Image, short_side: int, interpolation: str = "bicubic") -> Image.Image:
    size = resized_size(*image.size, short_side)
    if size == image.size:
        return image
    return image.resize(size, _FILTERS[interpolation])


def center_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    """Central ``size``×``size`` window of an (H, W, C) array, zero-padded first where it is smaller."""
    height, width = pixels.shape[:2]
    if height < size or width < size:
        pad_h, pad_w = max(size - height, 0), max(size - width, 0)
        # torchvision pads left/top with the floor half and right/bottom with the rest.
        pixels = np.pad(pixels, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
        height, width = pixels.shape[:2]
    top = round((height - size) / 2.0)  # Python round: half to even, like torchvision
    left = round((width - size) / 2.0)
    return pixels[top:top + size, left:left + size]


def to_normalized_tensor(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """(H, W, 3) uint8 → (3, H, W) float32, divided by 255, minus ``mean``, over ``std``."""
    x = torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return x.sub(mean_t).div(std_t)


def imagebind_transform(image: Image.Image, *, image_size: int, resize_size: int, interpolation: str,
                        mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """An RGB PIL image → the (3, image_size, image_size) float32 tensor ImageBind would feed its model."""
    resized = resize_short_side(image, resize_size, interpolation)
    pixels = center_crop(np.asarray(resized, dtype=np.uint8), image_size)
    return to_normalized_tensor(pixels, mean, std)
