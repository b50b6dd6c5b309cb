"""The ``text`` modality: strings through the frozen anchor's text tower."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from bind_text.config import TextConfig
from bind_text.tokenizer import DEFAULT_CONTEXT_LENGTH, VOCAB_SIZE, get_tokenizer
from bind_text.toy import render_caption
from bindcore.anchor import AnchorTowerModality
from bindcore.config import ModalityConfig
from bindcore.errors import ConfigError, InputError
from bindcore.toyworld import Scene


class TextModality(AnchorTowerModality):
    """Strings → ImageBind's CLIP BPE ids → the anchor's text tower.

    ``preprocess`` returns ``(B, context_length)`` int64 ids; ``encode`` gives the text-trunk features at
    the EOT position (before the projection); ``project`` applies the anchor's text projection and
    L2-normalises. Never trained (``trainable = False``).
    """

    name: ClassVar[str] = "text"
    Config: ClassVar[type[ModalityConfig]] = TextConfig
    config: TextConfig

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__(config, **options)
        # Read from the anchor's architecture, not its weights: tokenising works without them.
        text_cfg = (self.anchor_config.architecture() or {}).get("text_cfg") or {}
        anchor_length = int(text_cfg.get("context_length") or self.anchor.context_length)
        vocab_size = int(text_cfg.get("vocab_size") or self.anchor.vocab_size)
        length = self.config.context_length or min(DEFAULT_CONTEXT_LENGTH, anchor_length)
        if length > anchor_length:
            raise ConfigError(f"text.context_length is {length} but the anchor's text tower takes at most "
                              f"{anchor_length} tokens; leave context_length unset to follow the anchor")
        if vocab_size < VOCAB_SIZE:
            raise ConfigError(f"the anchor's text tower has {vocab_size} token embeddings; CLIP's BPE "
                              f"needs {VOCAB_SIZE} (use vocab_size={VOCAB_SIZE} in the anchor arch)")
        #: Token ids per text that ``preprocess`` returns.
        self.context_length = length
        self.tokenizer = get_tokenizer(self.config.vocab_path)

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        """Strings → (B, context_length) int64 CLIP BPE ids, exactly as ImageBind tokenises."""
        items = _as_items(inputs)
        for item in items:
            if not isinstance(item, str):
                raise InputError(item, f"text must be a str, got {type(item).__name__}",
                                 fix="pass strings (decode bytes first: data.decode('utf-8'))")
        if not items:
            return torch.empty(0, self.context_length, dtype=torch.long)
        ids = np.stack([self.tokenizer(text, self.context_length) for text in items])
        return torch.from_numpy(ids)

    def encode(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.is_floating_point():
            raise InputError(x, "text.encode takes (B, L) integer token ids", fix="pass the output of preprocess")
        return self.anchor.text_features(x)

    def project(self, h: Tensor) -> Tensor:
        return self.anchor.project_text(h)

    def render_toy(self, scene: Scene) -> str:
        """A caption of the scene's concept from a few CLIP-style templates (deterministic per scene)."""
        return render_caption(scene)


def _as_items(inputs: Any) -> list[Any]:
    if isinstance(inputs, (str, bytes, os.PathLike)):
        raise InputError(inputs, "text.preprocess takes a sequence of strings, not a single string",
                         fix="wrap it in a list: preprocess([text])")
    try:
        return list(inputs)
    except TypeError:
        raise InputError(inputs, "text.preprocess takes a sequence of strings",
                         fix="pass a list of str") from None
