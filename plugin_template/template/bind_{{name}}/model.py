"""The {{name}} modality: preprocess → patch ViT encoder (ImageBind layout) → projection head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from bindcore import Modality
from bindcore.nn import PatchEncoder, ProjectionHead
from bindcore.toyworld import Scene
from torch import Tensor

from {{package}}.config import {{Name}}Config
from {{package}}.preprocess import preprocess_{{name}}
from {{package}}.toy import render_{{name}}


class {{Name}}Modality(Modality):
    """{{Name}} maps → unit-norm embeddings in the shared space. Trained by bindcore against the frozen anchor."""

    name = "{{name}}"
    Config = {{Name}}Config
    #: Meaning of the preprocessed (N, 1, grid, grid) axes, so the trainer's augmentations (aligned crops,
    #: random erasing) know where height and width are. Change it if your tensor layout differs.
    augment_axes: Mapping[str, int] = {"height": -2, "width": -1}
    config: {{Name}}Config

    def __init__(self, config: {{Name}}Config | None = None, **options: Any):
        super().__init__(config, **options)  # validates options; unknown keys raise bindcore.ConfigError
        c = self.config
        self.encoder = PatchEncoder(in_chans=1, input_size=(c.grid_size, c.grid_size), patch_size=c.patch_size,
                                    stride=c.patch_size, width=c.width, depth=c.num_layers, num_heads=c.num_heads,
                                    drop_path=c.drop_path)
        self.head = ProjectionHead(c.width, c.embed_dim, dropout=c.head_dropout)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        return preprocess_{{name}}(inputs, grid_size=self.config.grid_size, value_scale=self.config.value_scale)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def project(self, h: Tensor) -> Tensor:
        return self.head(h)

    def render_toy(self, scene: Scene) -> np.ndarray:
        return render_{{name}}(scene, self.config.grid_size)
