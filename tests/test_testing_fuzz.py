"""The shared fuzz helpers (bindcore.testing.fuzz) catch what they are for: raw exceptions and non-finite output."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given

from bindcore.errors import InputError
from bindcore.testing.fuzz import FUZZ, assert_finite_or_typed, check_file, mutated_file


class _Fake:
    def __init__(self, preprocess_result=None, error=None, embedding=None):
        self.result, self.error, self.embedding = preprocess_result, error, embedding

    def preprocess(self, items):
        if self.error is not None:
            raise self.error
        return self.result

    def encode(self, x):
        return x

    def project(self, h):
        return h if self.embedding is None else self.embedding


def test_a_bindcore_error_or_a_finite_result_passes() -> None:
    assert_finite_or_typed(_Fake(error=InputError("x", "bad")), "x")
    assert_finite_or_typed(_Fake(preprocess_result=torch.ones(1, 3)), "x")


@pytest.mark.parametrize("fake", [_Fake(error=ValueError("raw")), _Fake(error=OverflowError("raw"))])
def test_a_raw_exception_fails(fake: _Fake) -> None:
    with pytest.raises((ValueError, OverflowError)):
        assert_finite_or_typed(fake, "x")


@pytest.mark.parametrize("fake", [_Fake(preprocess_result=torch.tensor([[float("nan")]])),
                                  _Fake(preprocess_result=torch.ones(1, 2), embedding=torch.tensor([[float("inf")]]))])
def test_non_finite_preprocessing_or_embedding_fails(fake: _Fake) -> None:
    with pytest.raises(AssertionError, match="non-finite"):
        assert_finite_or_typed(fake, "x")


def test_check_file_hands_over_a_path_with_the_suffix(tmp_path) -> None:
    seen = []

    class _Recording(_Fake):
        def preprocess(self, items):
            seen.append((items[0].name, items[0].read_bytes()))
            return torch.zeros(1, 1)

    check_file(_Recording(), ".wav", b"RIFF", stem="sound")
    assert seen == [("sound.wav", b"RIFF")]


VALID = {".bin": bytes(range(100)), ".txt": b"0123456789" * 3}


@FUZZ
@given(file=mutated_file(VALID))
def test_mutated_files_are_damaged_versions_of_the_valid_ones(file: tuple[str, bytes]) -> None:
    suffix, data = file
    assert suffix in VALID and 1 <= len(data) <= len(VALID[suffix])
