"""The {{name}} modality: ``preprocess`` (preprocess.py) → bindcore's patch ViT → projection head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from bindcore.patch_modality import PatchModality
from bindcore.toyworld import Scene
from torch import Tensor

from {{package}}.config import {{Name}}Config
from {{package}}.preprocess import preprocess_{{name}}
from {{package}}.toy import render_{{name}}


class {{Name}}Modality(PatchModality):
    """{{Name}} maps → unit-norm embeddings in the shared space, trained by bindcore against the frozen anchor.

    ``PatchModality`` brings the encoder (a conv-patch ViT in ImageBind's parameter layout), the projection
    head, ``augment_axes`` (height -2, width -1 of the ``(B, 1, image_size, image_size)`` batch) and
    ``from_imagebind``.
    """

    name: ClassVar[str] = "{{name}}"
    Config = {{Name}}Config
    in_chans: ClassVar[int] = 1  # channels of one preprocessed map
    config: {{Name}}Config

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        return preprocess_{{name}}(inputs, self.config)

    def render_toy(self, scene: Scene) -> np.ndarray:
        return render_{{name}}(scene, self.config.image_size)
