"""Hypothesis properties of thermal preprocessing: any valid frame → fixed shape/dtype, finite, deterministic,
values in [0, 1] without standardisation."""

from __future__ import annotations

import numpy as np
import torch
from bind_thermal import ThermalModality
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

TINY = {"image_size": 16, "patch_size": 8, "width": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 8}
shapes = st.tuples(st.integers(2, 40), st.integers(2, 40))
frames = st.one_of(
    arrays(np.uint8, shapes),
    arrays(np.uint16, shapes),
    arrays(np.float32, shapes, elements=st.floats(0.0, 1.0, width=32)),
)


@settings(max_examples=40, deadline=None)
@given(frame=frames, scaling=st.sampled_from(["dtype", "minmax", "percentile"]))
def test_any_valid_frame_gives_a_finite_unit_range_tensor(frame, scaling):
    m = ThermalModality(**TINY, scaling=scaling)
    out = m.preprocess([frame])
    assert out.shape == (1, 1, 16, 16)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, m.preprocess([frame]))


@settings(max_examples=25, deadline=None)
@given(frame=arrays(np.float64, shapes, elements=st.floats(-1.7e308, 1.7e308)))
def test_minmax_accepts_any_finite_floats(frame):
    out = ThermalModality(**TINY, scaling="minmax", normalization="standardize").preprocess([frame])
    assert out.shape == (1, 1, 16, 16) and torch.isfinite(out).all()
