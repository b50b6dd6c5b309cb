"""The depth modality: preprocessing from :mod:`bind_depth.preprocess`, a 1-channel patch ViT and the
linear head from :class:`bindcore.patch_modality.PatchModality`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from bind_depth.config import DepthConfig
from bind_depth.preprocess import preprocess_batch
from bind_depth.toy import render_depth_scene
from bindcore.config import ModalityConfig
from bindcore.patch_modality import PatchModality
from bindcore.toyworld import Scene


class DepthModality(PatchModality):
    """Depth maps → unit embeddings. Accepts 16-bit PNG paths (millimetres, 0 = invalid), float ``.npy``
    paths / arrays / tensors in metres, and :class:`bind_depth.DepthInput` for other units or per-item
    camera parameters."""

    name: ClassVar[str] = "depth"
    Config: ClassVar[type[ModalityConfig]] = DepthConfig
    imagebind_stem: ClassVar[str] = "depth_stem"
    config: DepthConfig

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        """Raw items → ``(B, 1, image_size, image_size)`` float32 (see the README for every step)."""
        return preprocess_batch(inputs, self.config)

    def render_toy(self, scene: Scene) -> np.ndarray:
        """A float32 ``(image_size, image_size)`` depth map in metres (0 = invalid pixel)."""
        return render_depth_scene(scene, self.config.image_size)
