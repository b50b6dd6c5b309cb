"""Base class of the modalities that run on one of the anchor's towers (bind-vision's images and video,
bind-text's texts)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from bindcore.anchor.build import load_anchor
from bindcore.anchor.config import AnchorConfig
from bindcore.anchor.frozen import FrozenAnchor
from bindcore.config import ModalityConfig
from bindcore.errors import ConfigError
from bindcore.modality_base import Modality


class AnchorTowerModality(Modality):
    """A frozen modality computed by the shared anchor (``trainable = False``).

    The anchor is built (or its weights read) on first use, not at construction: preprocessing needs no
    weights, so ``bindcore.modality("vision").preprocess(...)`` works where the ViT-H weights are absent.
    What preprocessing needs to know about the anchor (its image size, its context length) is read from
    :meth:`AnchorConfig.architecture` instead.

    The anchor is deliberately *not* a registered submodule: one anchor is shared by several modalities
    (and can be the 4 GB ViT-H), so it is kept out of ``parameters()`` (an optimizer can never receive it)
    and out of ``state_dict()`` (saving a modality stores only its config, which names the anchor's
    source; :func:`load_anchor` rebuilds it exactly). ``.to()``/``.half()`` build and move it, which moves it
    for every modality sharing it. Subclasses give their ``Config`` an ``anchor: AnchorConfig`` field.
    """

    trainable: ClassVar[bool] = False

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__(config, **options)
        if not isinstance(getattr(self.config, "anchor", None), AnchorConfig):
            raise ConfigError(f"{type(self).__name__}.Config needs an 'anchor' field of type AnchorConfig")
        object.__setattr__(self, "_anchor", None)

    @property
    def anchor_config(self) -> AnchorConfig:
        return self.config.anchor  # type: ignore[attr-defined]

    @property
    def anchor(self) -> FrozenAnchor:
        """The shared frozen anchor this modality runs on (built on first access)."""
        anchor = self.__dict__["_anchor"]
        if anchor is None:
            anchor = load_anchor(self.anchor_config)
            object.__setattr__(self, "_anchor", anchor)
        return anchor

    @property
    def anchor_loaded(self) -> bool:
        return self.__dict__["_anchor"] is not None

    @property
    def embed_dim(self) -> int:
        if not self.anchor_loaded:
            known = (self.anchor_config.architecture() or {}).get("embed_dim")
            if known:
                return int(known)
        return self.anchor.embed_dim

    def input_device_dtype(self) -> tuple[torch.device, torch.dtype]:
        return self.anchor.device, self.anchor.dtype

    def _apply(self, fn: Any, recurse: bool = True) -> AnchorTowerModality:
        super()._apply(fn, recurse)
        self.anchor._apply(fn, recurse)
        return self

    def extra_repr(self) -> str:
        if not self.anchor_loaded:
            return f"{super().extra_repr()}, anchor={self.anchor_config.describe()!r} (not built yet)"
        return f"{super().extra_repr()}, anchor={self.anchor.extra_repr()}"


__all__ = ["AnchorTowerModality"]
