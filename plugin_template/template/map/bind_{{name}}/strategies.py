"""Hypothesis strategies drawing valid raw {{name}} inputs, and examples of invalid ones, for this plugin's
tests and anyone testing code that consumes {{name}} data (CHANGE THESE with the accepted input format).
Needs hypothesis: imported only by tests."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SIDES = st.tuples(st.integers(2, 40), st.integers(2, 40))
VALUES = st.floats(0.0, 50.0, allow_nan=False, width=32)

#: Raw items preprocess must reject with bindcore.InputError (the conformance kit checks each).
INVALID_INPUTS = ([1.0, 2.0, 3.0], [[1.0, math.nan], [0.0, 0.0]], [[1.0]], "no-such-map.npy", "notes.txt")


def {{name}}_arrays() -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(st.sampled_from([np.float32, np.float64]), SIDES, elements=VALUES)


def {{name}}_inputs() -> st.SearchStrategy[object]:
    """One valid raw input: a numpy array, or the same map as a nested list."""
    return st.one_of({{name}}_arrays(), {{name}}_arrays().map(lambda a: a.tolist()))
