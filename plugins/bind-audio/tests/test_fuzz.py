"""Fuzzed audio inputs (random and mutated file bytes, arrays of any dtype/shape/values with odd sample rates):
each one either gives a finite tensor and a finite embedding, or raises a bindcore error. Derandomized, so CI sees
the same examples."""

from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from bind_audio import AudioArray, AudioModality
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bindcore import BindcoreError

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
DTYPES = ("int16", "int32", "uint8", "float16", "float32", "float64", "bool", "complex64")
RATES = (1, 7, 8000, 11025, 44100, 384_000, 384_001, 10_000_019, 2**31, 0, -8000, 8000.5, math.nan, math.inf)
#: A small front end (8 kHz, 2 x 0.25 s clips, 16 x 24 log-mel) and a 1-block trunk: a few ms per input.
TINY = {"sample_rate": 8000, "clip_duration": 0.25, "clips_per_item": 2, "num_mel_bins": 16, "target_length": 24,
        "patch_size": 8, "patch_stride": 8, "width": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 8}


def _valid_files() -> dict[str, bytes]:
    tone = (0.3 * np.sin(np.arange(2400) * 0.2)).astype(np.float32)
    files = {}
    for suffix, fmt, subtype in ((".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_16"), (".ogg", "OGG", "VORBIS")):
        buffer = io.BytesIO()
        sf.write(buffer, tone, 8000, format=fmt, subtype=subtype)
        files[suffix] = buffer.getvalue()
    return files


VALID = _valid_files()


@st.composite
def mutated_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid file with a few bytes overwritten (half of them in the header) and maybe its tail cut off."""
    suffix = draw(st.sampled_from(sorted(VALID)))
    data = bytearray(VALID[suffix])
    positions = st.one_of(st.integers(0, 63), st.integers(0, len(data) - 1))
    for position, value in draw(st.lists(st.tuples(positions, st.integers(0, 255)), min_size=1, max_size=12)):
        data[position] = value
    return suffix, bytes(data[: draw(st.integers(1, len(data)))])


arrays = hnp.arrays(dtype=st.sampled_from(DTYPES), shape=st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8),
    st.tuples(st.integers(1, 3000)), st.tuples(st.integers(1, 3), st.integers(1, 3000))))


@pytest.fixture(scope="module")
def audio() -> AudioModality:
    return AudioModality(**TINY).eval()


def assert_finite_or_typed(modality: AudioModality, item: object) -> None:
    """The fuzz property: a finite preprocessed tensor and embedding, or a BindcoreError (never a raw one)."""
    try:
        x = modality.preprocess([item])
    except BindcoreError:
        return
    assert torch.isfinite(x).all(), f"non-finite preprocessing of {item!r}"
    with torch.no_grad():
        assert torch.isfinite(modality.project(modality.encode(x))).all(), f"non-finite embedding of {item!r}"


def _check_file(modality: AudioModality, suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"sound{suffix}"
        path.write_bytes(data)
        assert_finite_or_typed(modality, path)


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=1024))
def test_random_file_bytes(audio: AudioModality, suffix: str, data: bytes) -> None:
    _check_file(audio, suffix, data)


@FUZZ
@given(file=mutated_file())
def test_mutated_valid_files(audio: AudioModality, file: tuple[str, bytes]) -> None:
    _check_file(audio, *file)


@FUZZ
@given(array=arrays, rate=st.sampled_from(RATES), as_tensor=st.booleans())
def test_arrays_of_any_dtype_shape_values_and_rate(audio: AudioModality, array: np.ndarray, rate: float,
                                                   as_tensor: bool) -> None:
    samples = torch.from_numpy(array.copy()) if as_tensor and array.dtype != np.uint16 else array
    assert_finite_or_typed(audio, AudioArray(samples, rate))
