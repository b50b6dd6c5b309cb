"""bindcore's conformance kit on the text modality (a tiny random anchor, no downloads): one test per check.

Text wraps the frozen anchor's text tower (``trainable = False``), so the kit skips the gradient and toy-binding
checks with that reason. Its preprocess returns int64 token ids, which the kit pins as the fixed dtype.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from bind_text import TextModality
from hypothesis import strategies as st

from bindcore.anchor import tiny_anchor_config
from bindcore.testing import ModalityConformance

TINY = {"anchor": {"arch": tiny_anchor_config(embed_dim=16, image_size=16, patch_size=8, width=32, layers=1,
                                              heads=2)}}


class TestTextConformance(ModalityConformance):
    modality = TextModality
    config = TINY
    inputs = st.text(alphabet=st.characters(codec=None), max_size=200)
    invalid_inputs = (12, b"bytes are not text", None)
    options: ClassVar[dict] = {"expected_dtype": torch.int64}
    known_failures: ClassVar[dict[str, str]] = {}
