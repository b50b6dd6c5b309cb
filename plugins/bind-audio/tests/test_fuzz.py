"""Fuzzed audio inputs (random and mutated file bytes, arrays of any dtype/shape/values with odd sample rates):
each one either gives a finite tensor and a finite embedding, or raises a bindcore error. Derandomized, so CI sees
the same examples."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from bind_audio import AudioArray, AudioModality
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bindcore.testing.fuzz import FUZZ, assert_finite_or_typed, check_file, mutated_file

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
MUTATED = mutated_file(VALID)


arrays = hnp.arrays(dtype=st.sampled_from(DTYPES), shape=st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8),
    st.tuples(st.integers(1, 3000)), st.tuples(st.integers(1, 3), st.integers(1, 3000))))


@pytest.fixture(scope="module")
def audio() -> AudioModality:
    return AudioModality(**TINY).eval()


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=1024))
def test_random_file_bytes(audio: AudioModality, suffix: str, data: bytes) -> None:
    check_file(audio, suffix, data, stem="sound")


@FUZZ
@given(file=MUTATED)
def test_mutated_valid_files(audio: AudioModality, file: tuple[str, bytes]) -> None:
    check_file(audio, *file, stem="sound")


@FUZZ
@given(array=arrays, rate=st.sampled_from(RATES), as_tensor=st.booleans())
def test_arrays_of_any_dtype_shape_values_and_rate(audio: AudioModality, array: np.ndarray, rate: float,
                                                   as_tensor: bool) -> None:
    samples = torch.from_numpy(array.copy()) if as_tensor and array.dtype != np.uint16 else array
    assert_finite_or_typed(audio, AudioArray(samples, rate))
