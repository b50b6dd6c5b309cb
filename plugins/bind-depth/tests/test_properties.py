"""Hypothesis properties of depth preprocessing: any valid map → fixed shape/dtype, finite, deterministic;
disparity strictly decreasing in depth."""

from __future__ import annotations

import numpy as np
import torch
from bind_depth import DepthInput, DepthModality, depth_to_disparity
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

TINY = {"image_size": 16, "patch_size": 8, "width": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 8}
sides = st.integers(min_value=2, max_value=40)


@st.composite
def depth_maps(draw: st.DrawFn) -> np.ndarray:
    """Float32 metres with arbitrary invalid (0) pixels and at least one pixel >= 0.5 m (valid in mm too)."""
    shape = (draw(sides), draw(sides))
    depth = draw(arrays(np.float32, shape, elements=st.floats(0.0, float(np.finfo(np.float32).max), width=32)))
    depth.flat[draw(st.integers(0, depth.size - 1))] = draw(st.floats(0.5, 100.0, width=32))
    return depth


@settings(max_examples=40, deadline=None)
@given(depth=depth_maps(), options=st.sampled_from([
    {}, {"infill": "none"}, {"representation": "depth", "normalization": "none"},
    {"representation": "depth", "normalization": "none", "infill": "none"}, {"normalization": "none"},
]))
def test_any_valid_map_gives_a_finite_fixed_shape_tensor(depth, options):
    m = DepthModality(**TINY, **options)
    millimetres = DepthInput(np.clip(depth.astype(np.float64) * 1000, 0, 2**32 - 1).astype(np.uint32),
                             metres_per_unit=0.001)
    out = m.preprocess([depth, millimetres])
    assert out.shape == (2, 1, 16, 16)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert torch.equal(out, m.preprocess([depth, millimetres]))


@settings(max_examples=40, deadline=None)
@given(depths=st.lists(st.floats(0.01, 50.0), min_size=2, max_size=30, unique=True),
       focal=st.floats(1.0, 2000.0), baseline=st.floats(0.01, 1.0))
def test_disparity_strictly_decreasing_in_depth(depths, focal, baseline):
    depth = np.sort(np.array(depths))
    disparity = depth_to_disparity(depth, focal, baseline, 0.01, 50.0)
    assert (np.diff(disparity) < 0).all()


@settings(max_examples=25, deadline=None)
@given(near=st.floats(0.05, 20.0), far=st.floats(0.05, 20.0))
def test_nearer_maps_preprocess_to_larger_values(near, far):
    if not near < far * 0.98:  # keep a margin so float32 rounding cannot tie the two
        return
    m = DepthModality(**TINY, normalization="none")
    out = m.preprocess([np.full((8, 8), near, np.float32), np.full((8, 8), far, np.float32)])
    assert (out[0] > out[1]).all()
