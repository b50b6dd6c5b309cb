"""Toy-world images: one clearly different shape and colour per concept, on a mildly varying background.

The concept sets the shape (disk, square, striped disk, triangle, ring, striped square, diamond,
checkerboard, plus, X) and the colour (ten far-apart colours); the scene's nuisance variables set the
position (``x``, ``y``), the object's size, its brightness, pixel noise, and (through ``scene.rng``) the
background level, gradient and tint and a small colour jitter. Drawn at 2× and box-averaged, so edges
and stripes stay legible at 32×32.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bindcore.toyworld import CONCEPTS, Scene

_SUPERSAMPLE = 2
Shape = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _disk(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u**2 + v**2 <= 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.8


def _stripes(coordinate: np.ndarray, count: int = 5) -> np.ndarray:
    return np.floor((coordinate + 1.0) * count / 2.0) % 2 == 0


#: One shape per concept, in ``CONCEPTS`` order; (u, v) are object-centred coordinates, radius 1.
SHAPES: tuple[Shape, ...] = (
    _disk,                                                                       # dog
    _square,                                                                     # car
    lambda u, v: _disk(u, v) & _stripes(u),                                      # rain: vertical stripes
    lambda u, v: (v <= 0.8) & (np.abs(u) <= (v + 1.0) * 0.55),                   # fire: triangle
    lambda u, v: (u**2 + v**2 <= 1.0) & (u**2 + v**2 >= 0.45),                   # bird: ring
    lambda u, v: _square(u, v) & _stripes(v),                                    # train: horizontal stripes
    lambda u, v: np.abs(u) + np.abs(v) <= 1.0,                                   # bell: diamond
    lambda u, v: _square(u, v) & (_stripes(u, 4) ^ _stripes(v, 4)),              # drum: checkerboard
    lambda u, v: (np.minimum(np.abs(u), np.abs(v)) <= 0.3) & (np.maximum(np.abs(u), np.abs(v)) <= 1.0),  # wind
    lambda u, v: (np.abs(np.abs(u) - np.abs(v)) <= 0.3) & (np.maximum(np.abs(u), np.abs(v)) <= 0.9),  # engine: X
)
assert len(SHAPES) == len(CONCEPTS)


#: One colour per concept, in ``CONCEPTS`` order: ten saturated colours chosen to be far apart in RGB.
PALETTE = np.array([
    (1.00, 0.10, 0.10),  # red
    (1.00, 0.55, 0.00),  # orange
    (0.10, 0.30, 1.00),  # blue
    (1.00, 1.00, 0.10),  # yellow
    (0.15, 0.90, 0.10),  # green
    (0.10, 0.95, 1.00),  # cyan
    (0.60, 0.10, 1.00),  # violet
    (1.00, 0.15, 0.80),  # magenta
    (1.00, 1.00, 1.00),  # white
    (0.05, 0.55, 0.45),  # teal
])
assert len(PALETTE) == len(CONCEPTS)


def concept_colour(concept: int) -> np.ndarray:
    """The concept's RGB colour in [0, 1]."""
    return PALETTE[concept]


def render_image(scene: Scene, size: int) -> np.ndarray:
    """The (size, size, 3) uint8 RGB image of ``scene``."""
    rng = scene.rng("vision")
    fine = size * _SUPERSAMPLE
    coords = (np.arange(fine) + 0.5) / fine
    yy, xx = np.meshgrid(coords, coords, indexing="ij")

    # Background: a dim grey level, a gentle gradient in a random direction and a faint tint.
    level = rng.uniform(0.12, 0.32)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    slope = rng.uniform(0.0, 0.15)
    gradient = slope * (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5))
    tint = rng.normal(0.0, 0.03, size=3)
    image = (level + gradient)[..., None] + tint

    radius = 0.75 * scene.size  # object diameter 0.375-0.75 of the image side
    mask = SHAPES[scene.concept]((xx - scene.x) / radius, (yy - scene.y) / radius)
    colour = np.clip(concept_colour(scene.concept) + rng.normal(0.0, 0.03, size=3), 0.0, 1.0) * scene.brightness
    image = np.where(mask[..., None], colour, image)

    image = image.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    image = image + rng.normal(0.0, scene.noise, size=image.shape)
    return np.clip(np.floor(image * 255.0 + 0.5), 0, 255).astype(np.uint8)
