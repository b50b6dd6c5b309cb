"""bindcore's conformance kit on the IMU modality (tiny config): one test per check."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from bind_imu import ImuModality, ImuRecording
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bindcore.testing import ModalityConformance

TINY = {"embed_dim": 16, "width": 32, "num_layers": 1, "num_heads": 2, "window_seconds": 1.0, "window_steps": 200,
        "default_sample_rate": 200.0, "num_windows": 2}


@st.composite
def recordings(draw: st.DrawFn) -> ImuRecording:
    """Six channels (acc m/s², gyro rad/s) of any length and rate, in either layout."""
    length = draw(st.integers(8, 400))
    samples = draw(arrays(np.float32, (6, length), elements=st.floats(-80.0, 80.0, width=32)))
    layout = draw(st.sampled_from(["channels_first", "channels_last"]))
    if layout == "channels_last":
        samples = np.ascontiguousarray(samples.T)
    return ImuRecording(samples, draw(st.floats(5.0, 2000.0)), layout)


class TestImuConformance(ModalityConformance):
    modality = ImuModality
    config = TINY
    inputs = recordings()
    invalid_inputs = (
        np.zeros((6, 100), dtype=np.float32),                    # a bare array: no rate or layout
        ImuRecording(np.zeros((5, 100), dtype=np.float32), 200.0),  # five channels
        ImuRecording(np.full((6, 100), np.nan), 200.0),           # NaN samples
        ImuRecording(np.zeros((6, 100)), -1.0),                   # bad sample rate
        ImuRecording(np.zeros((6, 3)), 200.0),                    # too short
        "imu.wav",                                                # unsupported file type
    )
    known_failures: ClassVar[dict[str, str]] = {}
