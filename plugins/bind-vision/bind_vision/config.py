"""Options of the ``vision`` modality. Defaults reproduce ImageBind's image preprocessing."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bind_vision.image_io import DEFAULT_MAX_PIXELS
from bindcore.anchor import CLIP_MEAN, CLIP_STD, AnchorConfig
from bindcore.config import ModalityConfig

Interpolation = Literal["bicubic", "bilinear", "nearest", "lanczos", "box", "hamming"]


class VisionConfig(ModalityConfig):
    """Image preprocessing and the anchor whose image tower embeds the images."""

    anchor: AnchorConfig = Field(default_factory=AnchorConfig,
                                 description="the frozen OpenCLIP anchor (default: ViT-H-14 laion2b_s32b_b79k)")
    image_size: int | None = Field(None, ge=1, description="side of the square crop fed to the image tower; "
                                                           "None: the anchor's input size (224 for ViT-H-14)")
    resize_size: int | None = Field(None, ge=1, description="the shorter side is resized to this before the "
                                                            "centre crop; None: image_size (as ImageBind)")
    interpolation: Interpolation = Field("bicubic", description="PIL resampling filter of the resize")
    mean: tuple[float, float, float] = Field(CLIP_MEAN, description="per-channel mean subtracted after /255")
    std: tuple[float, float, float] = Field(CLIP_STD, description="per-channel std divided by after /255")
    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=1, description="largest image decoded (pixels, from the file's header): 64 MP holds "
                                             "full-frame camera photos (61 MP); larger ones are refused before "
                                             "decoding. Pillow itself refuses 179 MP")
    toy_image_size: int = Field(32, ge=8, description="side of the images render_toy draws")

    @field_validator("std")
    @classmethod
    def _positive_std(cls, std: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(std) <= 0:
            raise ValueError(f"every std must be > 0, got {std}")
        return std
