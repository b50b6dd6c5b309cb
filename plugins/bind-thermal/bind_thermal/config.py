"""Options of the thermal modality: encoder sizes (ImageBind's thermal ViT-B by default) and the
preprocessing choices. See the plugin README for why each default is what it is."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bindcore.imageio import DEFAULT_MAX_PIXELS
from bindcore.patch_modality import PatchModalityConfig

#: Constants of the optional ``normalization="standardize"``: OpenCLIP's first (red) channel mean/std,
#: i.e. an image-style ``Normalize`` applied to the single thermal channel.
CLIP_CHANNEL_MEAN = 0.48145466
CLIP_CHANNEL_STD = 0.26862954

#: Options for the toy world: zero-centred inputs let tiny encoders bind several times faster.
TOY_WORLD_OPTIONS = {"normalization": "standardize"}


class ThermalConfig(PatchModalityConfig):
    """Thermal modality options. Sizes default to ImageBind's thermal encoder (ViT-B/16: 768 wide,
    12 layers, 12 heads, 224 px, 1024-d output)."""

    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, ge=1, description="largest thermal file decoded (pixels, from its header): 16 MP is "
                                             "over ten times the largest thermal sensors' frames (1280x1024); "
                                             "larger files are refused before decoding")
    scaling: Literal["dtype", "minmax", "percentile"] = Field(
        "dtype", description="to [0, 1]: divide by the dtype's max (uint8 /255, uint16 /65535; floats must "
                             "already lie in [0, 1]), per-image min-max, or per-image percentile stretch")
    percentiles: tuple[float, float] = Field(
        (1.0, 99.0), description="low/high percentiles of scaling='percentile'")
    normalization: Literal["none", "standardize"] = Field(
        "none", description="after scaling to [0, 1]: none (what ImageBind's released model expects) or "
                            "(x - norm_mean) / norm_std")
    norm_mean: float = Field(CLIP_CHANNEL_MEAN, description="mean of normalization='standardize'")
    norm_std: float = Field(CLIP_CHANNEL_STD, gt=0, description="std of normalization='standardize'")

    @model_validator(mode="after")
    def _check_percentiles(self) -> ThermalConfig:
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}")
        return self
