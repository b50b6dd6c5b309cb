"""bind-vision: the ``vision`` modality for bindcore (images through the frozen OpenCLIP anchor), and ``video``
(2-frame clips through the same tower with a temporal patch stem, see :mod:`bind_vision.video`)."""

from __future__ import annotations

from collections.abc import Callable

import bindcore
from bind_vision.config import VisionConfig
from bind_vision.image_io import to_rgb_image
from bind_vision.model import VisionModality
from bind_vision.toy import render_image
from bind_vision.transforms import imagebind_transform
from bind_vision.video import VideoConfig, VideoModality

__version__ = "0.1.0"


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    register(VisionModality)
    register(VideoModality)


__all__ = ["VideoConfig", "VideoModality", "VisionConfig", "VisionModality", "imagebind_transform", "render_image",
           "to_rgb_image"]
