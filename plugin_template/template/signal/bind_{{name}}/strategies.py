"""Hypothesis strategies drawing valid raw {{name}} inputs, and examples of invalid ones, for this plugin's
tests and anyone testing code that consumes {{name}} data (CHANGE THESE with the accepted input format).
Needs hypothesis: imported only by tests."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from {{package}}.config import NUM_CHANNELS

SHAPES = st.integers(2, 300).map(lambda steps: (NUM_CHANNELS, steps))
VALUES = st.floats(-50.0, 50.0, allow_nan=False, width=32)

#: Raw items preprocess must reject with bindcore.InputError (the conformance kit checks each).
INVALID_INPUTS = ([1.0, 2.0, 3.0], [[1.0, math.nan]] * NUM_CHANNELS, [[1.0]] * NUM_CHANNELS,
                  [[0.0] * 10] * (NUM_CHANNELS + 1), "no-such-recording.npy", "notes.txt")


def {{name}}_arrays() -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(st.sampled_from([np.float32, np.float64]), SHAPES, elements=VALUES)


def {{name}}_inputs() -> st.SearchStrategy[object]:
    """One valid raw input: a numpy array, or the same recording as a nested list."""
    return st.one_of({{name}}_arrays(), {{name}}_arrays().map(lambda a: a.tolist()))
