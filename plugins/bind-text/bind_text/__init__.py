"""bind-text: the ``text`` modality for bindcore (strings through the frozen OpenCLIP anchor's text tower)."""

from __future__ import annotations

from collections.abc import Callable

import bindcore
from bind_text.config import TextConfig
from bind_text.model import TextModality
from bind_text.tokenizer import EOT_ID, PAD_ID, SOT_ID, ImageBindTokenizer, clean_text, get_tokenizer
from bind_text.toy import TEMPLATES, caption, render_caption

__version__ = "0.1.0"


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    register(TextModality)


__all__ = ["EOT_ID", "PAD_ID", "SOT_ID", "TEMPLATES", "ImageBindTokenizer", "TextConfig", "TextModality",
           "caption", "clean_text", "get_tokenizer", "render_caption"]
