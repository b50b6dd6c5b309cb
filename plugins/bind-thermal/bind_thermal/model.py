"""The thermal modality: preprocessing from :mod:`bind_thermal.preprocess`, a 1-channel patch ViT and the
linear head from :class:`bindcore.patch_modality.PatchModality`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from torch import Tensor

from bind_thermal.config import ThermalConfig
from bind_thermal.preprocess import preprocess_batch
from bind_thermal.toy import render_thermal_scene
from bindcore.config import ModalityConfig
from bindcore.patch_modality import PatchModality
from bindcore.toyworld import Scene


class ThermalModality(PatchModality):
    """Thermal (long-wave infrared) frames → unit embeddings. Accepts 8/16-bit grayscale PNG/TIFF (and
    gray-as-RGB JPEG, as LLVIP ships) paths, ``.npy`` paths, numpy arrays and torch tensors."""

    name: ClassVar[str] = "thermal"
    Config: ClassVar[type[ModalityConfig]] = ThermalConfig
    imagebind_stem: ClassVar[str] = "rgbt_stem"  # ImageBind stores the thermal stem under this name
    config: ThermalConfig

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        """Raw items → ``(B, 1, image_size, image_size)`` float32 (see the README for every step)."""
        return preprocess_batch(inputs, self.config)

    def render_toy(self, scene: Scene) -> np.ndarray:
        """A uint8 ``(image_size, image_size)`` thermal frame."""
        return render_thermal_scene(scene, self.config.image_size)
