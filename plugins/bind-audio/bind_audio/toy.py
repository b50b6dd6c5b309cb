"""Toy-world audio: each concept is a fixed chord (three partials) pulsing at a fixed rate; the scene's
nuisance variables change loudness, onset, stereo position, decay and noise, never the chord.

Concept signature (from a fixed table + ``concept_code(concept, "audio", ...)``):
  * fundamental on a log-spaced grid 160-1900 Hz (about 3 mel bins apart even with 32 bins at 8 kHz),
  * two upper partials at concept-specific ratios (1.3-1.9x and 2.1-2.9x),
  * amplitude modulation at a concept-specific 2-11 Hz rate (rhythm, visible at a 10 ms frame shift).
Nuisance: gain ← brightness, onset ← x, left/right pan ← y (channel 0 is what ``channel="first"`` hears),
decay time ← size, white noise ← noise, random phases and a ±1 % detune ← ``scene.rng("audio")``.
"""

from __future__ import annotations

import math

import numpy as np

from bindcore.toyworld import CONCEPTS, Scene, concept_code

FUNDAMENTALS = np.geomspace(160.0, 1900.0, len(CONCEPTS))
# Interleave the grid so neighbouring concept indices are far apart in pitch.
FUNDAMENTALS = FUNDAMENTALS[np.argsort(np.arange(len(CONCEPTS)) * 7 % len(CONCEPTS))]


def signature(concept: int) -> tuple[np.ndarray, float]:
    """Partial frequencies (Hz, 3) and amplitude-modulation rate (Hz) of ``concept``."""
    code = concept_code(concept, "audio", 3)
    f0 = float(FUNDAMENTALS[concept])
    partials = np.array([f0, f0 * (1.3 + 0.6 * code[0]), f0 * (2.1 + 0.8 * code[1])])
    am_rate = 2.0 + 9.0 * float(code[2])
    return partials, am_rate


def render(scene: Scene, *, sample_rate: int, duration: float) -> np.ndarray:
    """A ``(2, samples)`` float32 stereo waveform of ``scene`` (deterministic per scene)."""
    rng = scene.rng("audio")
    n = max(round(duration * sample_rate), 1)
    t = np.arange(n) / sample_rate
    partials, am_rate = signature(scene.concept)
    partials = partials * (1.0 + 0.01 * rng.uniform(-1, 1))
    nyquist = sample_rate / 2
    phases = rng.uniform(0, 2 * math.pi, size=len(partials))
    tone = np.zeros(n)
    for amplitude, freq, phase in zip((1.0, 0.6, 0.4), partials, phases, strict=True):
        if freq < 0.95 * nyquist:  # keep the chord alias-free at tiny sample rates
            tone += amplitude * np.sin(2 * math.pi * freq * t + phase)
    pulse = 0.55 + 0.45 * np.sin(2 * math.pi * am_rate * t + rng.uniform(0, 2 * math.pi))
    onset = 0.3 * float(np.clip(scene.x, 0, 1)) * duration
    since = t - onset
    decay = duration * (0.4 + 2.0 * float(np.clip(scene.size, 0, 1)))
    envelope = np.where(since >= 0, np.exp(-np.maximum(since, 0) / decay), 0.0)
    attack = np.clip(since / 0.01, 0, 1)  # 10 ms fade-in avoids a broadband click at the onset
    mono = 0.25 * float(scene.brightness) * tone * pulse * envelope * attack
    angle = (0.25 + 0.5 * float(np.clip(scene.y, 0, 1))) * math.pi / 2
    stereo = np.stack([math.cos(angle) * mono, math.sin(angle) * mono])
    stereo += 0.5 * float(scene.noise) * rng.standard_normal((2, n))
    return stereo.astype(np.float32)
