"""The {{name}} modality: ``preprocess`` (preprocess.py) → bindcore's patch ViT over time → projection head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from bindcore.signal_modality import SignalModality
from bindcore.toyworld import Scene
from torch import Tensor

from {{package}}.config import NUM_CHANNELS, {{Name}}Config
from {{package}}.preprocess import preprocess_{{name}}
from {{package}}.toy import render_{{name}}


class {{Name}}Modality(SignalModality):
    """{{Name}} signals → unit-norm embeddings in the shared space, trained by bindcore against the frozen anchor.

    ``SignalModality`` brings the encoder (a patch ViT whose tokens are ``patch_size`` time steps of every
    channel), the projection head and ``augment_axes`` (time -1 of the ``(B, channels, num_steps)`` batch).
    """

    name: ClassVar[str] = "{{name}}"
    Config = {{Name}}Config
    in_chans: ClassVar[int] = NUM_CHANNELS
    config: {{Name}}Config

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        return preprocess_{{name}}(inputs, self.config)

    def render_toy(self, scene: Scene) -> np.ndarray:
        return render_{{name}}(scene, self.config.num_steps)
