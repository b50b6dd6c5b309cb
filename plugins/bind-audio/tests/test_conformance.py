"""bindcore's conformance kit on the audio modality (tiny config): one test per check."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from bind_audio import AudioArray, AudioModality
from hypothesis import strategies as st

from bindcore.testing import ModalityConformance

TINY = {"sample_rate": 8000, "clip_duration": 0.5, "clips_per_item": 2, "num_mel_bins": 24, "target_length": 48,
        "width": 32, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "drop_path": 0.0}


@st.composite
def waveforms(draw: st.DrawFn) -> AudioArray:
    """Mono or multi-channel float or int16 waveforms at any rate, long enough for one 25 ms frame at 8 kHz."""
    rate = draw(st.sampled_from([8000, 16000, 44100]) | st.integers(3000, 50000))
    seconds = draw(st.floats(0.05, 1.2))
    channels = draw(st.integers(1, 3))
    amplitude = draw(st.floats(1e-4, 1.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = int(seconds * rate)
    t = np.arange(n) / rate
    signal = amplitude * (np.sin(2 * np.pi * rng.uniform(50, min(rate / 2, 3900)) * t)
                          + 0.3 * rng.standard_normal((channels, n)))
    if draw(st.booleans()):
        return AudioArray(np.clip(signal * 32767, -32768, 32767).astype(np.int16), rate)
    samples = signal.astype(np.float32)
    return AudioArray(samples[0] if channels == 1 and draw(st.booleans()) else samples, rate)


class TestAudioConformance(ModalityConformance):
    modality = AudioModality
    config = TINY
    inputs = waveforms()
    invalid_inputs = (
        np.zeros(8000, dtype=np.float32),                          # a bare array: no sample rate
        AudioArray(np.zeros(8000, dtype=np.float32), 0),           # bad sample rate
        AudioArray(np.full(8000, np.nan, dtype=np.float32), 8000),  # NaN samples
        AudioArray(np.zeros(8000, dtype=np.complex64), 8000),      # not real-valued
        12,                                                        # not audio
    )
    known_failures: ClassVar[dict[str, str]] = {}
