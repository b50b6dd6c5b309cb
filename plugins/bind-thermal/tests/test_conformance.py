"""bindcore's conformance kit on the thermal modality: one test per check."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from bind_thermal import ThermalModality
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bindcore.testing import ModalityConformance

# The demo's thermal size: the tinier 16-px/1-layer encoder does not bind the toy world within the kit's budget.
SMALL = {"image_size": 32, "patch_size": 8, "width": 64, "num_layers": 2, "num_heads": 4, "embed_dim": 64}
shapes = st.tuples(st.integers(2, 40), st.integers(2, 40))


class TestThermalConformance(ModalityConformance):
    modality = ThermalModality
    config = SMALL
    inputs = st.one_of(
        arrays(np.uint8, shapes),
        arrays(np.uint16, shapes),
        arrays(np.float32, shapes, elements=st.floats(0.0, 1.0, width=32)),
    )
    invalid_inputs = (
        np.full((8, 8), 2.0, dtype=np.float32),   # floats outside [0, 1] under the default dtype scaling
        np.array([[0.5, np.nan], [0.1, 0.2]]),    # NaN
        "thermal.gif",                            # unsupported file type
        12,                                       # not a frame
    )
    options: ClassVar[dict] = {"binding_steps": 400, "binding_lr": 2e-3}
    known_failures: ClassVar[dict[str, str]] = {}
