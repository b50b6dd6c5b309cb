"""Seeded, tensor-based RandAugment for image-like float maps (depth, thermal: paper Table 9, "RandAugment 9/0.5").

Reading of "9/0.5": timm's ``rand-m9-mstd0.5``: magnitude 9 on timm's 0..10 scale with a per-op magnitude noise of
std 0.5 (clipped to [0, 10]), ``num_ops`` = 2 ops per image (timm's default), each applied with probability 0.5
(timm's default ``p``), ops picked uniformly with replacement.

Each op is a pure function ``op(image, level, sign) -> image`` of a ``(C, H, W)`` float tensor (every non-spatial
axis folded into ``C``), a level in [0, 10] and a sign of ±1; all randomness (which op, whether it applies, its
level and sign) is drawn by :func:`rand_augment` from the generator it is given, a fixed number of draws per image
and op slot. Level 0 is the identity for every op (timm's "increasing" level mappings: severity grows with the
magnitude). Intensity ops work on the map's own value range (its min..max), not on an 8-bit [0, 255] one, because
the preprocessed maps are standardised floats; with several channels (e.g. 3), one range and mean over all of them,
as for one image. Geometric ops resample with ``affine_grid``/``grid_sample`` about the
image centre and fill uncovered pixels with 0 (the standardised mean, as ``random_erase`` does).

Left out, on purpose: Color (saturation; needs an RGB channel axis, which no spatial modality declares), Invert
(it would turn near into far on a disparity map), AutoContrast (stretching a float map to its own range is the
identity).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

MAX_LEVEL = 10.0  # timm's _LEVEL_DENOM: magnitudes are on a 0..10 scale

Op = Callable[[Tensor, float, float], Tensor]


# -- geometric ops ------------------------------------------------------------------------------------------
def _affine(image: Tensor, matrix: tuple[float, float, float, float], shift: tuple[float, float]) -> Tensor:
    """Resample ``image`` so that output pixel p (centred pixel coordinates x, y) reads input ``matrix @ p + shift``."""
    _, height, width = image.shape
    a, b, c, d = matrix
    if (a, b, c, d, *shift) == (1.0, 0.0, 0.0, 1.0, 0.0, 0.0):
        return image.clone()  # exactly the identity: resampling would round
    # Pixel → normalised coordinates (align_corners=False): x_n = x / (W/2), y_n = y / (H/2).
    theta = torch.tensor([[a, b * height / width, 2 * shift[0] / width],
                          [c * width / height, d, 2 * shift[1] / height]], dtype=torch.float64)
    grid = F.affine_grid(theta.to(image.dtype)[None], [1, *image.shape], align_corners=False)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def rotate(image: Tensor, level: float, sign: float) -> Tensor:
    """Rotate by up to ±30° (timm's range) about the centre."""
    angle = math.radians(sign * level / MAX_LEVEL * 30.0)
    cos, sin = math.cos(angle), math.sin(angle)
    return _affine(image, (cos, -sin, sin, cos), (0.0, 0.0))


def shear_x(image: Tensor, level: float, sign: float) -> Tensor:
    """Shear along the width axis by up to ±0.3 (timm's range)."""
    return _affine(image, (1.0, sign * level / MAX_LEVEL * 0.3, 0.0, 1.0), (0.0, 0.0))


def shear_y(image: Tensor, level: float, sign: float) -> Tensor:
    """Shear along the height axis by up to ±0.3."""
    return _affine(image, (1.0, 0.0, sign * level / MAX_LEVEL * 0.3, 1.0), (0.0, 0.0))


def translate_x(image: Tensor, level: float, sign: float) -> Tensor:
    """Shift along the width axis by up to ±45% of the width (timm's ``translate_pct``)."""
    return _affine(image, (1.0, 0.0, 0.0, 1.0), (sign * level / MAX_LEVEL * 0.45 * image.shape[-1], 0.0))


def translate_y(image: Tensor, level: float, sign: float) -> Tensor:
    """Shift along the height axis by up to ±45% of the height."""
    return _affine(image, (1.0, 0.0, 0.0, 1.0), (0.0, sign * level / MAX_LEVEL * 0.45 * image.shape[-2]))


# -- intensity ops, on the map's own range -------------------------------------------------------------------
def _enhance_factor(level: float, sign: float) -> float:
    """timm's increasing enhance mapping: 1 ± 0.9 · level/10, kept ≥ 0.1."""
    return max(0.1, 1.0 + sign * level / MAX_LEVEL * 0.9)


def _blend(base: Tensor, image: Tensor, factor: float) -> Tensor:
    """PIL ImageEnhance's blend, without its 8-bit clipping: ``base + factor · (image − base)``."""
    if factor == 1.0:
        return image.clone()  # exactly the identity
    return base + factor * (image - base)


def brightness(image: Tensor, level: float, sign: float) -> Tensor:
    """Scale the values' distance from the map's minimum (PIL blends with black; a float map's "black" is its min)."""
    return _blend(image.amin(), image, _enhance_factor(level, sign))


def contrast(image: Tensor, level: float, sign: float) -> Tensor:
    """Scale the values' distance from the map's mean."""
    return _blend(image.mean(), image, _enhance_factor(level, sign))


def sharpness(image: Tensor, level: float, sign: float) -> Tensor:
    """Blend with PIL's SMOOTH kernel (1 1 1 / 1 5 1 / 1 1 1, /13) applied inside a 1-pixel border (kept as is)."""
    kernel = torch.ones(3, 3, dtype=image.dtype)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(image.shape[0], 1, 3, 3)
    smooth = image.clone()
    if image.shape[-2] > 2 and image.shape[-1] > 2:
        smooth[:, 1:-1, 1:-1] = F.conv2d(image[None], kernel, groups=image.shape[0])[0]
    return _blend(smooth, image, _enhance_factor(level, sign))


def _range(image: Tensor) -> tuple[Tensor, Tensor]:
    low, high = image.amin(), image.amax()
    return low, torch.clamp(high - low, min=torch.finfo(image.dtype).tiny)


def posterize(image: Tensor, level: float, sign: float) -> Tensor:
    """Quantise the map's range to 2**bits levels, bits = 8 − 4 · level/10 (AutoAugment's 8..4 bits, severity
    increasing); 8 bits keeps a float map as it is (an 8-bit image keeps all its bits)."""
    bits = 8.0 - 4.0 * level / MAX_LEVEL
    if bits >= 8.0:
        return image.clone()
    steps = 2.0 ** bits
    low, span = _range(image)
    relative = (image - low) / span
    return low + torch.clamp(torch.floor(relative * steps), max=steps - 1) / (steps - 1) * span


def solarize(image: Tensor, level: float, sign: float) -> Tensor:
    """Mirror (about the range) the values above a threshold at 1 − level/10 of the map's range (timm's
    increasing mapping: more of the map is inverted as the level grows)."""
    low, span = _range(image)
    relative = (image - low) / span
    flipped = low + (1.0 - relative) * span
    return torch.where(relative > 1.0 - level / MAX_LEVEL, flipped, image)


def solarize_add(image: Tensor, level: float, sign: float) -> Tensor:
    """Add up to 110/256 of the range (timm's 0..110 of 255) to values in the lower half of the range, clipped at
    the maximum."""
    low, span = _range(image)
    high = low + span
    relative = (image - low) / span
    added = torch.minimum(image + level / MAX_LEVEL * 110.0 / 256.0 * span, high)
    return torch.where(relative < 0.5, added, image)


def equalize(image: Tensor, level: float, sign: float) -> Tensor:
    """Histogram equalisation over the map's range (256 bins), blended in by level/10 (timm applies it at full
    strength whatever the magnitude; the blend makes level 0 the identity and level 10 the full op)."""
    low, span = _range(image)
    bins = torch.clamp(((image - low) / span * 256).long(), 0, 255)
    counts = torch.bincount(bins.flatten(), minlength=256).to(image.dtype)
    cdf = torch.cumsum(counts, 0) / counts.sum()
    equalized = low + cdf[bins] * span
    return _blend(image, equalized, level / MAX_LEVEL)


#: The op pool, in timm's ``_RAND_TRANSFORMS`` order (minus Color, Invert and AutoContrast: see the module doc).
OPS: dict[str, Op] = {
    "equalize": equalize, "rotate": rotate, "posterize": posterize, "solarize": solarize,
    "solarize_add": solarize_add, "contrast": contrast, "brightness": brightness, "sharpness": sharpness,
    "shear_x": shear_x, "shear_y": shear_y, "translate_x": translate_x, "translate_y": translate_y,
}
GEOMETRIC_OPS = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")


def rand_augment(x: Tensor, settings: Any, generator: torch.Generator, height_axis: int,
                 width_axis: int) -> Tensor:
    """RandAugment each row of the batch ``x`` over its ``height_axis`` and ``width_axis`` (negative indices, the
    modality's declared axes); every other non-batch axis is carried along as channels. Returns a new tensor.

    ``settings`` has ``num_ops``, ``magnitude``, ``magnitude_std``, ``prob`` and ``ops`` (names, or None for all).
    Per row and op slot, five draws whether or not the op applies: the op, whether it applies (``prob``), two
    uniforms for the magnitude noise, the sign.
    """
    names: Sequence[str] = tuple(settings.ops) if settings.ops else tuple(OPS)
    moved = x.movedim((height_axis, width_axis), (-2, -1))
    flat = moved.reshape(x.shape[0], -1, *moved.shape[-2:])
    out = torch.empty_like(flat)
    for row in range(flat.shape[0]):
        image = flat[row]
        draws = torch.rand(settings.num_ops, 5, generator=generator, dtype=torch.float64).tolist()
        for pick, apply, noise_a, noise_b, sign_u in draws:
            level = settings.magnitude
            if settings.magnitude_std > 0:
                level += settings.magnitude_std * _normal(noise_a, noise_b)
            level = min(MAX_LEVEL, max(0.0, level))
            if apply < settings.prob:
                op = OPS[names[min(int(pick * len(names)), len(names) - 1)]]
                image = op(image, level, 1.0 if sign_u < 0.5 else -1.0)
        out[row] = image
    return out.reshape(moved.shape).movedim((-2, -1), (height_axis, width_axis)).contiguous()


def _normal(u1: float, u2: float) -> float:
    """A standard normal from two uniforms (Box-Muller)."""
    return math.sqrt(-2.0 * math.log(max(u1, 1e-300))) * math.cos(2.0 * math.pi * u2)
