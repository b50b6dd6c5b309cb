"""Tokenisation parity with ImageBind's SimpleTokenizer, and its rules one by one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bind_text import EOT_ID, SOT_ID, clean_text, get_tokenizer


@pytest.mark.parity
def test_matches_reference_tokens(vectors: Path, text) -> None:
    strings = json.loads((vectors / "fixtures" / "text" / "texts.json").read_text())
    expected = np.load(vectors / "preprocessed" / "text_tokens.npy")
    got = text.preprocess(strings)
    assert got.dtype.is_floating_point is False and got.shape == expected.shape == (6, 77)
    np.testing.assert_array_equal(got.numpy(), expected)
    # The text tower pools at argmax(ids): the reference's EOS indices follow from the ids alone.
    meta = json.loads((vectors / "generation_meta.json").read_text())
    assert got.argmax(dim=-1).tolist() == meta["text_eos_index"]


def test_readme_example_and_empty_string() -> None:
    tokenizer = get_tokenizer()
    assert tokenizer("A dog.")[:6].tolist() == [SOT_ID, 320, 1929, 269, EOT_ID, 0]
    assert tokenizer("")[:3].tolist() == [SOT_ID, EOT_ID, 0]


def test_cleaning_rules() -> None:
    assert clean_text("  A\tPhoto&amp;amp;of\u00a0a   DOG \n") == "a photo&of a dog"
    assert clean_text("ﬁne ＡＢＣ") == "fine abc"          # ftfy: ligature and full-width forms
    assert clean_text("cafÃ©") == "café"                  # ftfy: mojibake


def test_truncation_keeps_eot_last() -> None:
    tokenizer = get_tokenizer()
    long_text = " ".join(["dog"] * 200)
    ids = tokenizer(long_text)
    assert ids.shape == (77,) and ids[0] == SOT_ID and ids[-1] == EOT_ID
    assert (ids[1:-1] == tokenizer("dog")[1]).all()
    short = tokenizer(long_text, context_length=8)
    assert short.tolist() == [SOT_ID, *[tokenizer("dog")[1]] * 6, EOT_ID]


def test_literal_special_tokens_become_special_ids() -> None:
    ids = get_tokenizer()("a <|endoftext|> b <|STARTOFTEXT|>").tolist()
    assert ids[:6] == [SOT_ID, 320, EOT_ID, 321, SOT_ID, EOT_ID]


def test_decode_round_trips_clean_text() -> None:
    tokenizer = get_tokenizer()
    assert tokenizer.decode(tokenizer("A photo of a Dog!")).strip() == "<|startoftext|>a photo of a dog ! <|endoftext|>"
