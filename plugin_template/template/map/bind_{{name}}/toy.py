"""Toy-world renderer: one scene → one raw {{name}} map, so the modality can be trained and tested offline.

The concept must be easy to recover (bindcore's demo expects zero-shot accuracy well above chance), and the
nuisance variables must visibly change the map without hiding the concept. Here (CHANGE THIS to something
your sensor would plausibly record): each concept is a grating with its own orientation, spatial frequency
and phase, strongest in a blob at (x, y) whose radius follows ``size``; ``brightness`` scales the values,
``noise`` adds sensor noise drawn from the scene's own generator.
"""

from __future__ import annotations

import numpy as np
from bindcore.toyworld import Scene, concept_code

SALT = "{{name}}"


def render_{{name}}(scene: Scene, grid_size: int) -> np.ndarray:
    """A (grid_size, grid_size) float32 map of non-negative values; deterministic per scene."""
    rng = scene.rng(SALT)
    orientation = (scene.concept % 5) * np.pi / 5
    cycles = 2.0 if scene.concept < 5 else 4.0  # cycles across the map
    phase = concept_code(scene.concept, SALT, 1)[0] * 2 * np.pi + rng.uniform(-0.3, 0.3)
    v, u = np.mgrid[0:grid_size, 0:grid_size] / max(grid_size - 1, 1)
    along = u * np.cos(orientation) + v * np.sin(orientation)
    grating = 0.5 + 0.5 * np.cos(2 * np.pi * cycles * along + phase)
    blob = np.exp(-((u - scene.x) ** 2 + (v - scene.y) ** 2) / (2 * scene.size**2))
    values = scene.brightness * grating * (0.4 + 0.6 * blob)
    values = values + rng.normal(0.0, scene.noise, values.shape)
    return np.clip(values, 0.0, None).astype(np.float32)
