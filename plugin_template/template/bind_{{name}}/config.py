"""Options of the {{name}} modality. Every field is validated; unknown keys are rejected (ModalityConfig)."""

from __future__ import annotations

from bindcore import ModalityConfig
from pydantic import Field, model_validator


class {{Name}}Config(ModalityConfig):
    """Sizes of the input grid and the encoder. The defaults are a small but useful model; tests use tinier ones."""

    grid_size: int = Field(16, ge=4, le=512, description="every map is resized to grid_size x grid_size")
    patch_size: int = Field(4, ge=1, description="side of the square patches the encoder embeds")
    value_scale: float = Field(1.0, gt=0, description="raw values are divided by this fixed constant")
    width: int = Field(128, ge=8, description="transformer width")
    num_layers: int = Field(4, ge=0, description="number of transformer blocks")
    num_heads: int = Field(4, ge=1, description="attention heads (must divide width)")
    drop_path: float = Field(0.0, ge=0.0, lt=1.0, description="stochastic depth rate of the last block")
    head_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the projection")
    embed_dim: int = Field(1024, ge=1, description="dimension of the shared space (must match the anchor's)")

    @model_validator(mode="after")
    def _sizes_fit(self) -> {{Name}}Config:
        if self.grid_size % self.patch_size:
            raise ValueError(f"grid_size {self.grid_size} must be a multiple of patch_size {self.patch_size}")
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} must be a multiple of num_heads {self.num_heads}")
        return self
