"""A minimal, fully conforming modality the kit tests itself against (and a compact example of the contract).

Raw input: a 1-D sequence of finite floats (list, tuple or numpy array) of length 2 to 4096, e.g. one
channel of a slow sensor. It is linearly resampled to ``length`` samples and divided by ``value_scale``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from bindcore.config import ModalityConfig
from bindcore.errors import InputError
from bindcore.modality_base import Modality
from bindcore.nn import ProjectionHead
from bindcore.toyworld import Scene, concept_code

MAX_INPUT_LENGTH = 4096


class ReferenceConfig(ModalityConfig):
    length: int = Field(32, ge=2, le=1024, description="samples every input is resampled to")
    value_scale: float = Field(1.0, gt=0, description="fixed divisor applied to raw values")
    width: int = Field(32, ge=1, description="hidden width of the MLP encoder")
    embed_dim: int = Field(16, ge=1, description="dimension of the shared embedding space")


class ReferenceModality(Modality):
    """1-D signal → resample → MLP → projection head."""

    name = "reference"
    Config = ReferenceConfig
    config: ReferenceConfig

    def __init__(self, config: ReferenceConfig | None = None, **options: Any):
        super().__init__(config, **options)
        c = self.config
        self.encoder = nn.Sequential(nn.Linear(c.length, c.width), nn.GELU(), nn.Linear(c.width, c.width))
        self.head = ProjectionHead(c.width, c.embed_dim)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = [self._one(item) for item in inputs]
        return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, self.config.length)

    def _one(self, item: Any) -> np.ndarray:
        try:
            values = np.array(item, dtype=np.float64)  # a copy: the caller's array is never modified
        except (TypeError, ValueError):
            raise InputError(item, "not a sequence of numbers", fix="pass a 1-D list or numpy array") from None
        if values.ndim != 1 or not 2 <= values.size <= MAX_INPUT_LENGTH:
            raise InputError(item, f"expected a 1-D sequence of 2 to {MAX_INPUT_LENGTH} values, "
                                   f"got shape {values.shape}", fix="pass one channel as a flat sequence")
        if not np.isfinite(values).all():
            raise InputError(item, "contains NaN or Inf", fix="drop or interpolate missing samples")
        grid = np.linspace(0.0, 1.0, self.config.length)
        resampled = np.interp(grid, np.linspace(0.0, 1.0, values.size), values)
        return (resampled / self.config.value_scale).astype(np.float32)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def project(self, h: Tensor) -> Tensor:
        return self.head(h)

    def render_toy(self, scene: Scene) -> np.ndarray:
        """The concept's fixed 8-point signature, stretched to ``length``, shifted by x, scaled by brightness."""
        length = self.config.length
        signature = concept_code(scene.concept, self.name, 8) * 2.0 - 1.0
        wave = np.interp(np.linspace(0, 7, length), np.arange(8), signature)
        wave = np.roll(wave, round((scene.x - 0.5) * length / 4))
        noise = scene.rng(self.name).normal(0.0, scene.noise, length)
        return (wave * scene.brightness * 2.0 + noise).astype(np.float64)
