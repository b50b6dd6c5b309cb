"""Toy-world renderer: one scene → one raw {{name}} recording, so the modality can be trained and tested offline.

The concept must be easy to recover (bindcore's demo expects zero-shot accuracy well above chance), and the
nuisance variables must visibly change the recording without hiding the concept. Here (CHANGE THIS to
something your sensor would plausibly record): each concept is an oscillation with its own frequency and
per-channel phases, strongest in a burst centred at time ``x`` whose duration follows ``size``; ``y`` sets
a per-channel baseline offset, ``brightness`` scales the amplitude, ``noise`` adds sensor noise drawn from
the scene's own generator.
"""

from __future__ import annotations

import numpy as np
from bindcore.toyworld import Scene, concept_code

from {{package}}.config import NUM_CHANNELS

SALT = "{{name}}"


def render_{{name}}(scene: Scene, num_steps: int) -> np.ndarray:
    """A (NUM_CHANNELS, num_steps) float32 recording; deterministic per scene."""
    rng = scene.rng(SALT)
    t = np.arange(num_steps) / num_steps
    cycles = 2.0 + scene.concept  # cycles across the recording
    phases = concept_code(scene.concept, SALT, NUM_CHANNELS) * 2 * np.pi + rng.uniform(-0.3, 0.3)
    oscillation = np.sin(2 * np.pi * cycles * t[None, :] + phases[:, None])
    burst = np.exp(-((t - scene.x) ** 2) / (2 * scene.size**2))
    baseline = (scene.y - 0.5) * np.linspace(-1.0, 1.0, NUM_CHANNELS)[:, None]
    values = scene.brightness * oscillation * (0.4 + 0.6 * burst) + baseline
    values = values + rng.normal(0.0, scene.noise, values.shape)
    return values.astype(np.float32)
