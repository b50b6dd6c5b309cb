"""Property tests: any Unicode string → (77,) int64 ids, SOT first, EOT present, deterministic."""

from __future__ import annotations

import torch
from bind_text import EOT_ID, SOT_ID
from hypothesis import given, settings
from hypothesis import strategies as st

any_text = st.text(alphabet=st.characters(codec=None), max_size=300)


@settings(max_examples=50, deadline=None)
@given(st.lists(any_text, min_size=1, max_size=4))
def test_any_unicode_string_gives_valid_ids(text, batch) -> None:
    ids = text.preprocess(batch)
    assert ids.shape == (len(batch), 77) and ids.dtype == torch.int64
    assert (ids[:, 0] == SOT_ID).all()
    assert ((ids == EOT_ID).sum(dim=1) >= 1).all()
    assert ((ids >= 0) & (ids < 49408)).all()
    # Everything after the last EOT is padding.
    for row in ids:
        last_eot = int((row == EOT_ID).nonzero().max())
        assert (row[last_eot + 1:] == 0).all()
    assert torch.equal(ids, text.preprocess(list(batch)))


@settings(max_examples=20, deadline=None)
@given(st.text(alphabet=st.characters(categories=["Cs", "Co", "Cc", "Zs", "So"]), max_size=50))
def test_control_surrogate_and_symbol_strings_do_not_crash(text, string) -> None:
    ids = text.preprocess([string])
    assert ids[0, 0] == SOT_ID and (ids[0] == EOT_ID).any()
