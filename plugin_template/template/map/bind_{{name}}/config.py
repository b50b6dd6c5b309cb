"""Options of the {{name}} modality, and ``TINY``, the one small config every test (and a quick demo) uses.

Every field is validated and unknown keys are rejected (bindcore's ModalityConfig). The encoder fields
(``image_size``, ``patch_size``, ``width``, ``num_layers``, ``num_heads``, ``embed_dim``, ``drop_path``,
``head_dropout``) come from :class:`bindcore.patch_modality.PatchModalityConfig`; this class sets smaller
defaults and adds the preprocessing options (CHANGE THESE for your sensor).
"""

from __future__ import annotations

from typing import Any

from bindcore.patch_modality import PatchModalityConfig
from pydantic import Field, model_validator


class {{Name}}Config(PatchModalityConfig):
    """The defaults are a small but useful model; ``TINY`` below is what the tests train."""

    image_size: int = Field(16, ge=4, le=512, description="every map is resized to image_size x image_size")
    patch_size: int = Field(4, ge=1, description="side (and stride) of the square patches; divides image_size")
    width: int = Field(128, ge=8, description="transformer width")
    num_layers: int = Field(4, ge=0, description="number of transformer blocks")
    num_heads: int = Field(4, ge=1, description="attention heads (must divide width)")
    value_scale: float = Field(1.0, gt=0, description="raw values are divided by this fixed constant")

    @model_validator(mode="after")
    def _patches_tile_the_map(self) -> {{Name}}Config:
        if self.image_size % self.patch_size:  # the patch stem would silently drop the remainder
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        return self


#: The smallest config that still binds in the toy world within the conformance kit's 200 steps.
TINY: dict[str, Any] = {"image_size": 16, "patch_size": 4, "width": 32, "num_layers": 1, "num_heads": 2,
                        "embed_dim": 16}
