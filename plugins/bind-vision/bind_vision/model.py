"""The ``vision`` modality: images through the frozen anchor's image tower."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from bind_vision.config import VisionConfig
from bind_vision.image_io import to_rgb_image
from bind_vision.toy import render_image
from bind_vision.transforms import imagebind_transform
from bindcore.anchor import AnchorTowerModality
from bindcore.config import ModalityConfig
from bindcore.errors import ConfigError, InputError
from bindcore.toyworld import Scene


class VisionModality(AnchorTowerModality):
    """Images → ImageBind preprocessing → the anchor's image tower.

    ``encode`` gives the pooled image-trunk features (before the tower's projection); ``project`` applies
    the anchor's projection and L2-normalises. Never trained (``trainable = False``).
    """

    name: ClassVar[str] = "vision"
    Config: ClassVar[type[ModalityConfig]] = VisionConfig
    config: VisionConfig

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__(config, **options)
        # Read from the anchor's architecture, not its weights: preprocessing works without them.
        anchor_size = self.anchor_config.image_size()
        if anchor_size is None:  # an architecture only the built model can tell
            anchor_size = self.anchor.image_size[0]
        size = self.config.image_size or anchor_size
        if size != anchor_size:
            raise ConfigError(f"vision.image_size is {size} but the anchor's image tower takes "
                              f"{anchor_size}x{anchor_size} images; leave image_size unset to follow the anchor")
        #: Side of the square images ``preprocess`` returns.
        self.image_size = size
        self.resize_size = self.config.resize_size or size

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        """Paths, PIL images, arrays or tensors → (B, 3, S, S) float32, exactly as ImageBind preprocesses."""
        items = _as_items(inputs)
        c = self.config
        tensors = [
            imagebind_transform(to_rgb_image(item, max_pixels=c.max_pixels), image_size=self.image_size,
                                resize_size=self.resize_size, interpolation=c.interpolation, mean=c.mean, std=c.std)
            for item in items
        ]
        if not tensors:
            return torch.empty(0, 3, self.image_size, self.image_size)
        return torch.stack(tensors)

    def encode(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(x, "vision.encode takes a (B, 3, H, W) batch", fix="pass the output of preprocess")
        return self.anchor.image_features(x)

    def project(self, h: Tensor) -> Tensor:
        return self.anchor.project_image(h)

    def render_toy(self, scene: Scene) -> np.ndarray:
        """A (toy_image_size, toy_image_size, 3) uint8 RGB image of the scene's concept."""
        return render_image(scene, self.config.toy_image_size)


def _as_items(inputs: Any) -> list[Any]:
    """The items of a batch; one bare image is refused (it would be iterated row by row or char by char)."""
    if isinstance(inputs, (str, bytes, os.PathLike, np.ndarray, Tensor, Image.Image)):
        raise InputError(inputs, "vision.preprocess takes a sequence of images, not a single image",
                         fix="wrap it in a list: preprocess([image]); for a stacked batch pass list(batch)")
    try:
        return list(inputs)
    except TypeError:
        raise InputError(inputs, "vision.preprocess takes a sequence of images",
                         fix="pass a list of paths, PIL images, arrays or tensors") from None
