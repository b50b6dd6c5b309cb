"""Toy-world depth maps: a tilted background plane a few metres away and, nearer the camera, an object
whose outline and relief (its *profile*) identify the concept.

Nuisance: position (x, y), size, the plane's distance/tilt (from ``brightness`` and the scene rng),
sensor noise (``noise``) and a few invalid (0) pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bindcore.toyworld import CONCEPTS, Scene

# Each profile maps object-local coordinates (a, b) ∈ [-1, 1]² (a right, b down) to (mask, relief ∈ [0, 1]),
# relief 1 = the part nearest the camera.
Profile = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _disc_dome(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r2 = a**2 + b**2
    return r2 < 1, np.sqrt(np.clip(1 - r2, 0, 1))


def _wide_slab(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.abs(a) < 1) & (np.abs(b) < 0.45), np.ones_like(a)


def _vertical_bars(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.abs(a) < 1) & (np.abs(b) < 1) & (np.mod((a + 1) * 2, 1) < 0.45), np.ones_like(a)


def _triangle_ramp(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.abs(b) < 1) & (np.abs(a) < (b + 1) / 2), np.clip((b + 1) / 2, 0, 1)


def _chevron(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.abs(a) < 1) & (np.abs(b - (0.9 * np.abs(a) - 0.45)) < 0.28), np.ones_like(a)


def _two_rails(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.abs(a) < 1) & ((np.abs(b + 0.5) < 0.22) | (np.abs(b - 0.5) < 0.22)), np.ones_like(a)


def _ring(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.sqrt(a**2 + b**2)
    return (r > 0.55) & (r < 1), np.ones_like(a)


def _pyramid(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edge = np.maximum(np.abs(a), np.abs(b))
    return edge < 0.85, np.clip(1 - edge / 0.85, 0, 1)


def _wavy_disc(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return a**2 + b**2 < 1, 0.5 + 0.5 * np.sin(3 * np.pi * a)


def _cross(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    arm = ((np.abs(a) < 0.3) & (np.abs(b) < 1)) | ((np.abs(b) < 0.3) & (np.abs(a) < 1))
    return arm, np.ones_like(a)


#: One profile per concept, in ``bindcore.toyworld.CONCEPTS`` order.
PROFILES: dict[str, Profile] = {
    "dog": _disc_dome, "car": _wide_slab, "rain": _vertical_bars, "fire": _triangle_ramp, "bird": _chevron,
    "train": _two_rails, "bell": _ring, "drum": _pyramid, "wind": _wavy_disc, "engine": _cross,
}
assert tuple(PROFILES) == CONCEPTS

OBJECT_RELIEF_M = 1.0  # depth range between an object's nearest and farthest visible part
OBJECT_EXTENT = 0.9  # object half-width, as a multiple of scene.size (so objects span 45-90% of the map)


def render_depth_scene(scene: Scene, size: int) -> np.ndarray:
    """Render ``scene`` as a ``(size, size)`` float32 depth map in metres, 0 marking invalid pixels."""
    rng = scene.rng("depth")
    centres = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(centres, centres)  # u across columns (x), v down rows (y)

    base = 3.0 + 2.0 * (1.0 - scene.brightness) + rng.uniform(0.0, 1.0)
    tilt_x, tilt_y = rng.uniform(-0.8, 0.8, size=2)
    depth = base + tilt_x * (u - 0.5) + tilt_y * (v - 0.5)

    half_extent = OBJECT_EXTENT * scene.size
    mask, relief = PROFILES[CONCEPTS[scene.concept]]((u - scene.x) / half_extent, (v - scene.y) / half_extent)
    # Near (0.55-0.8 m) with a large relief: in disparity the object then spans most of the dynamic range,
    # so its profile survives the per-patch LayerNorm of the stem even in tiny encoders.
    nearest = rng.uniform(0.55, 0.8)
    depth = np.where(mask, nearest + OBJECT_RELIEF_M * (1.0 - relief), depth)

    depth = depth + rng.normal(0.0, 0.5 * scene.noise + 0.005, size=depth.shape) * depth / 3.0
    depth = np.clip(depth, 0.2, None)
    invalid = rng.random(depth.shape) < rng.uniform(0.0, 0.02)  # dropouts, as structured-light sensors have
    depth[invalid] = 0.0
    return depth.astype(np.float32)
