"""bindcore's conformance kit on the depth modality (tiny config): one test per check."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from bind_depth import DepthModality
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bindcore.testing import ModalityConformance

# The demo's depth size: the tinier 16-px/1-layer encoder does not bind the toy world within the kit's budget.
SMALL = {"image_size": 32, "patch_size": 8, "width": 64, "num_layers": 2, "num_heads": 4, "embed_dim": 64}


@st.composite
def depth_maps(draw: st.DrawFn) -> np.ndarray:
    """Float metres of any size, 0 marking invalid pixels, with at least one valid pixel."""
    shape = (draw(st.integers(2, 40)), draw(st.integers(2, 40)))
    depth = draw(arrays(np.float32, shape, elements=st.floats(0.0, 100.0, width=32)))
    depth.flat[draw(st.integers(0, depth.size - 1))] = draw(st.floats(0.5, 100.0, width=32))
    return depth


class TestDepthConformance(ModalityConformance):
    modality = DepthModality
    config = SMALL
    inputs = depth_maps()
    invalid_inputs = (
        np.full((8, 8), -1.0, dtype=np.float32),      # negative depth
        np.array([[1.0, np.nan], [2.0, 3.0]]),        # NaN
        np.ones((8, 8), dtype=bool),                  # not a depth map
        "depth.gif",                                  # unsupported file type
        12,                                           # not a depth input at all
    )
    options: ClassVar[dict] = {"binding_steps": 400, "binding_lr": 2e-3}
    known_failures: ClassVar[dict[str, str]] = {}
