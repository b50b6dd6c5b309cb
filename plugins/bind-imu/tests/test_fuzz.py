"""Fuzzed IMU inputs (random and mutated .csv/.npy bytes, recordings of any dtype/shape/values/rate): each one
either gives a finite tensor and a finite embedding, or raises a bindcore error. Derandomized, so CI sees the same
examples."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from bind_imu import ImuModality, ImuRecording
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bindcore.testing.fuzz import FUZZ, assert_finite_or_typed, check_file, mutated_file

SUFFIXES = (".csv", ".npy")
DTYPES = ("int16", "int64", "uint8", "float16", "float32", "float64", "bool", "complex64")
RATES = (1e-310, 5e-324, 1e-3, 1.0, 50.0, 200.0, 400.0, 1e5, 1e300, 0.0, -200.0, math.nan, math.inf)
TINY = {"embed_dim": 16, "width": 32, "num_layers": 1, "num_heads": 2, "window_seconds": 1.0, "window_steps": 200,
        "default_sample_rate": 200.0, "num_windows": 2}


def _valid_files() -> dict[str, bytes]:
    samples = np.sin(np.arange(60)[:, None] * 0.1 + np.arange(6)) * 3
    rows = "".join(f"{i * 0.005:.3f},{','.join(f'{v:.4f}' for v in row)}\n" for i, row in enumerate(samples))
    npy = io.BytesIO()
    np.save(npy, samples.T.astype(np.float32))
    return {".csv": ("time,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n" + rows).encode(), ".npy": npy.getvalue()}


VALID = _valid_files()
MUTATED = mutated_file(VALID, header_bytes=None,  # digits and separators likelier
                       values=st.one_of(st.sampled_from(b"0123456789.,-e\n"), st.integers(0, 255)))


arrays = hnp.arrays(dtype=st.sampled_from(DTYPES), shape=st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8),
    st.tuples(st.just(6), st.integers(0, 400)), st.tuples(st.integers(0, 400), st.just(6))))


@pytest.fixture(scope="module")
def imu() -> ImuModality:
    return ImuModality(**TINY).eval()


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=1024))
def test_random_file_bytes(imu: ImuModality, suffix: str, data: bytes) -> None:
    check_file(imu, suffix, data, stem="imu")


@FUZZ
@given(file=MUTATED)
def test_mutated_valid_files(imu: ImuModality, file: tuple[str, bytes]) -> None:
    check_file(imu, *file, stem="imu")


@FUZZ
@given(array=arrays, rate=st.sampled_from(RATES), layout=st.sampled_from(["channels_first", "channels_last"]),
       kind=st.sampled_from(["numpy", "tensor", "bfloat16"]))
def test_recordings_of_any_dtype_shape_values_and_rate(imu: ImuModality, array: np.ndarray, rate: float,
                                                       layout: str, kind: str) -> None:
    samples: object = array
    if kind == "tensor" and array.dtype != np.uint16:
        samples = torch.from_numpy(array.copy())
    elif kind == "bfloat16" and array.dtype.kind == "f":
        samples = torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    assert_finite_or_typed(imu, ImuRecording(samples, rate, layout))
