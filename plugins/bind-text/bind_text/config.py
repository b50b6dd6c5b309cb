"""Options of the ``text`` modality."""

from __future__ import annotations

from pydantic import Field

from bindcore.anchor import AnchorConfig
from bindcore.config import ModalityConfig


class TextConfig(ModalityConfig):
    """Tokenisation and the anchor whose text tower embeds the text."""

    anchor: AnchorConfig = Field(default_factory=AnchorConfig,
                                 description="the frozen OpenCLIP anchor (default: ViT-H-14 laion2b_s32b_b79k)")
    context_length: int | None = Field(None, ge=2, description="token ids per text (SOT + tokens + EOT + padding); "
                                                               "None: min(77, the anchor's context length)")
    vocab_path: str | None = Field(None, description="CLIP BPE vocabulary (.txt.gz); None: the one open_clip ships")
