"""The toy world: deterministic scenes that every modality can render into its own raw input.

A scene has a *concept* (the class a zero-shot classifier must recover) and nuisance variables
(position, size, brightness, noise) that change the rendering but not the concept. Plugins render
scenes through ``Modality.render_toy(scene)``; nothing is downloaded and everything follows from a seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from bindcore.seeds import seed_of

CONCEPTS: tuple[str, ...] = (
    "dog", "car", "rain", "fire", "bird", "train", "bell", "drum", "wind", "engine",
)


@dataclass(frozen=True)
class Scene:
    """One toy-world scene. All nuisance values lie in [0, 1] except where noted."""

    concept: int
    x: float            # horizontal position of the object
    y: float            # vertical position of the object
    size: float         # relative object size, in [0.25, 0.5]
    brightness: float   # global intensity, in [0.6, 1.0]
    noise: float        # noise level, in [0, 0.1]
    seed: int           # per-scene seed for renderer randomness

    @property
    def name(self) -> str:
        return CONCEPTS[self.concept]

    def rng(self, salt: str) -> np.random.Generator:
        """A generator private to this scene and ``salt`` (use the modality name), stable across runs."""
        return np.random.default_rng(seed_of("scene", self.seed, salt))


def concept_code(concept: int, salt: str, size: int) -> np.ndarray:
    """A fixed pseudo-random signature in [0, 1) for ``concept`` (e.g. a modality's colour, pitch, …).

    The same (concept, salt) always gives the same vector, so renderers of different runs agree.
    """
    return np.random.default_rng(seed_of("concept", concept, salt)).random(size)


#: The range each nuisance variable is drawn from (uniformly); ``generate_scenes(nuisance=...)`` shifts them.
NUISANCE_RANGES: dict[str, tuple[float, float]] = {
    "x": (0.3, 0.7), "y": (0.3, 0.7), "size": (0.25, 0.5), "brightness": (0.6, 1.0), "noise": (0.0, 0.1),
}


def generate_scenes(count: int, seed: int, *, num_concepts: int = len(CONCEPTS),
                    nuisance: Mapping[str, tuple[float, float]] | None = None) -> list[Scene]:
    """``count`` scenes with balanced concepts (round-robin, then shuffled), deterministic in ``seed``.

    ``nuisance`` replaces some of the :data:`NUISANCE_RANGES` (e.g. ``{"noise": (0.2, 0.4)}``: a shifted world);
    the concepts and the draws of the other variables stay as they are."""
    if not 1 <= num_concepts <= len(CONCEPTS):
        raise ValueError(f"num_concepts must be in [1, {len(CONCEPTS)}], got {num_concepts}")
    unknown = set(nuisance or {}) - set(NUISANCE_RANGES)
    if unknown:
        raise ValueError(f"unknown nuisance variable(s) {sorted(unknown)}; known: {', '.join(NUISANCE_RANGES)}")
    ranges = {**NUISANCE_RANGES, **(nuisance or {})}
    rng = np.random.default_rng(seed)
    concepts = rng.permutation(np.arange(count) % num_concepts)
    return [
        Scene(
            concept=int(c),
            x=float(rng.uniform(*ranges["x"])),
            y=float(rng.uniform(*ranges["y"])),
            size=float(rng.uniform(*ranges["size"])),
            brightness=float(rng.uniform(*ranges["brightness"])),
            noise=float(rng.uniform(*ranges["noise"])),
            seed=int(rng.integers(0, 2**62)),
        )
        for c in concepts
    ]
