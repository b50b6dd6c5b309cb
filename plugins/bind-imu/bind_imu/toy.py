"""Toy-world IMU renders: a 6-channel recording whose posture and motion pattern identify the concept.

Concept signature (fixed per concept):
* posture: the direction of gravity in the accelerometer, one of 10 well-spread directions (Fibonacci sphere);
* motion: a base frequency from :data:`BASE_FREQUENCIES`, and per channel an amplitude, a harmonic (1-3x)
  and a phase from ``concept_code(concept, "imu", …)``.
Nuisance: motion amplitude from ``size`` and ``brightness``; a common phase (time) shift from ``x``; a small
accelerometer offset from ``y``; Gaussian noise scaled by ``noise``; small per-scene frequency and phase
jitter from ``scene.rng("imu")``.
"""

from __future__ import annotations

import numpy as np

from bind_imu.config import NUM_CHANNELS, ImuConfig
from bind_imu.recording import ImuRecording
from bindcore.toyworld import CONCEPTS, Scene, concept_code

GRAVITY = 9.81  # m/s²
#: Base motion frequency (Hz) per concept: at least one cycle per second, resolvable at 100 Hz and up.
BASE_FREQUENCIES: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0)
ACC_MOTION = 2.0   # m/s², peak motion amplitude of the accelerometer channels
GYRO_MOTION = 1.0  # rad/s, peak motion amplitude of the gyroscope channels


def posture(concept: int) -> np.ndarray:
    """Unit gravity direction of ``concept``: point ``concept`` of a 10-point Fibonacci sphere."""
    count = len(CONCEPTS)
    z = 1.0 - (2 * concept + 1) / count
    angle = concept * np.pi * (3.0 - np.sqrt(5.0))
    radius = np.sqrt(1.0 - z * z)
    return np.array([radius * np.cos(angle), radius * np.sin(angle), z])


def render_scene(scene: Scene, config: ImuConfig) -> ImuRecording:
    """Render ``scene`` at ``config.default_sample_rate`` for ``config.toy_seconds`` (default: one window)."""
    rate = config.default_sample_rate
    seconds = config.toy_seconds if config.toy_seconds is not None else config.window_seconds
    steps = max(config.min_samples, round(rate * seconds))
    time = np.arange(steps) / rate
    rng = scene.rng("imu")

    code = concept_code(scene.concept, "imu", 3 * NUM_CHANNELS)
    amplitude = 0.3 + 0.7 * code[:NUM_CHANNELS]
    harmonic = 1 + np.floor(3 * code[NUM_CHANNELS:2 * NUM_CHANNELS])
    phase = 2 * np.pi * code[2 * NUM_CHANNELS:]
    scale = np.r_[np.full(3, ACC_MOTION), np.full(3, GYRO_MOTION)]

    strength = (0.5 + scene.size) * scene.brightness            # nuisance: in [0.45, 1.0]
    shift = 2 * np.pi * scene.x                                 # nuisance: common phase shift
    frequency = BASE_FREQUENCIES[scene.concept] * harmonic * (1 + rng.uniform(-0.03, 0.03))
    jitter = rng.uniform(-0.3, 0.3, NUM_CHANNELS)
    motion = np.sin(2 * np.pi * frequency[:, None] * time + (phase + shift + jitter)[:, None])
    samples = strength * (scale * amplitude)[:, None] * motion

    samples[:3] += GRAVITY * posture(scene.concept)[:, None] + (scene.y - 0.5)  # nuisance: offset from y
    samples += scene.noise * 5 * scale[:, None] * rng.standard_normal(samples.shape)
    return ImuRecording(samples.astype(np.float32), rate, "channels_first", source=f"toy scene ({scene.name})")
