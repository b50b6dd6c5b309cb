"""Toy-world thermal frames: a cool background with a gentle gradient and, at (x, y), a heat pattern whose
shape, texture and number of hot spots identify the concept; ``brightness`` scales the heat.

Nuisance: position, size, brightness (heat amplitude), background level/gradient (scene rng), sensor noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bindcore.toyworld import CONCEPTS, Scene

# Each pattern maps object-local coordinates (a, b) ∈ [-1, 1]² (a right, b down) to heat in [0, 1].
Pattern = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _blob(a: np.ndarray, b: np.ndarray, ca: float, cb: float, sa: float, sb: float | None = None) -> np.ndarray:
    sb = sa if sb is None else sb
    return np.exp(-0.5 * (((a - ca) / sa) ** 2 + ((b - cb) / sb) ** 2))


def _body(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # one large warm blob
    return _blob(a, b, 0, 0, 0.5)


def _car(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # warm box, two hot wheels under it
    box = ((np.abs(a) < 1) & (np.abs(b) < 0.3)) * 0.5
    return np.maximum(box, _blob(a, b, -0.55, 0.55, 0.25) + _blob(a, b, 0.55, 0.55, 0.25))


def _rain(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # vertical streaks over a square
    inside = (np.abs(a) < 1) & (np.abs(b) < 1)
    return inside * (0.5 + 0.5 * np.cos(3 * np.pi * a)) ** 2


def _fire(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # tall, very hot flame
    return np.clip(1.3 * _blob(a, b, 0, 0.1, 0.3, 0.85), 0, 1)


def _bird(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # hot chevron
    return np.exp(-0.5 * ((b - (0.9 * np.abs(a) - 0.45)) / 0.22) ** 2) * (np.abs(a) < 1)


def _train(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # long warm band with three hot spots
    band = ((np.abs(a) < 1) & (np.abs(b) < 0.3)) * 0.4
    return np.maximum(band, sum(_blob(a, b, ca, 0, 0.2) for ca in (-0.65, 0.0, 0.65)))


def _bell(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # hot ring
    return np.exp(-0.5 * ((np.sqrt(a**2 + b**2) - 0.7) / 0.17) ** 2)


def _drum(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # concentric rings inside a disc
    r = np.sqrt(a**2 + b**2)
    return (r < 1) * (0.5 + 0.5 * np.cos(3 * np.pi * r))


def _wind(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # faint horizontal stripes
    return ((np.abs(a) < 1) & (np.abs(b) < 1)) * 0.6 * (0.5 + 0.5 * np.sin(3 * np.pi * b))


def _engine(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # 2×2 grid of hot spots
    return sum(_blob(a, b, ca, cb, 0.22) for ca in (-0.5, 0.5) for cb in (-0.5, 0.5))


#: One heat pattern per concept, in ``bindcore.toyworld.CONCEPTS`` order.
PATTERNS: dict[str, Pattern] = {
    "dog": _body, "car": _car, "rain": _rain, "fire": _fire, "bird": _bird,
    "train": _train, "bell": _bell, "drum": _drum, "wind": _wind, "engine": _engine,
}
assert tuple(PATTERNS) == CONCEPTS

PATTERN_EXTENT = 0.9  # pattern half-width, as a multiple of scene.size (patterns span 45-90% of the frame)


def render_thermal_scene(scene: Scene, size: int) -> np.ndarray:
    """Render ``scene`` as a ``(size, size)`` uint8 thermal frame (what an 8-bit thermal PNG holds)."""
    rng = scene.rng("thermal")
    centres = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(centres, centres)

    ambient = rng.uniform(25, 70)
    grad_x, grad_y = rng.uniform(-15, 15, size=2)
    frame = ambient + grad_x * (u - 0.5) + grad_y * (v - 0.5)

    half_extent = PATTERN_EXTENT * scene.size
    heat = PATTERNS[CONCEPTS[scene.concept]]((u - scene.x) / half_extent, (v - scene.y) / half_extent)
    frame = frame + scene.brightness * rng.uniform(150, 180) * np.clip(heat, 0, 1)
    frame = frame + rng.normal(0.0, 255 * (0.5 * scene.noise + 0.005), size=frame.shape)
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)
