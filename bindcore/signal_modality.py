"""A ready-made modality for multi-channel 1-D signals (EEG, EMG, accelerometers, …), the sibling of
:class:`bindcore.patch_modality.PatchModality`: a ``(C, T)`` window → :class:`bindcore.nn.PatchEncoder` over
``(1, patch_size)`` patches (one token per ``patch_size`` time steps, all channels) → CLS →
:class:`bindcore.nn.ProjectionHead`.

Plugins subclass :class:`SignalModality`, set ``name``, ``in_chans`` and a ``Config`` with their defaults and
preprocessing options, and implement ``preprocess``/``render_toy``. The stem is a ``Conv2d`` of kernel
``(1, patch_size)``; ImageBind's IMU stem computes the same map as a Linear over channel-major patches
(``proj.weight.reshape(width, C, 1, patch_size)`` converts one into the other), and bind-imu keeps that
layout so ImageBind's IMU checkpoint loads as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, model_validator
from torch import Tensor

from bindcore.config import ModalityConfig
from bindcore.modality_base import Modality
from bindcore.nn import PatchEncoder, ProjectionHead


class SignalModalityConfig(ModalityConfig):
    """Encoder sizes of a :class:`SignalModality` (defaults: ImageBind's IMU trunk, 2000 steps in patches of 8,
    512 wide, 6 blocks, a 1024-d head)."""

    num_steps: int = Field(2000, ge=1, description="time steps T of one model input")
    patch_size: int = Field(8, ge=1, description="time steps per patch (token); num_steps is a multiple of it")
    width: int = Field(512, ge=1, description="transformer width")
    num_layers: int = Field(6, ge=0, description="transformer blocks")
    num_heads: int = Field(8, ge=1, description="attention heads (width must be divisible by it)")
    embed_dim: int = Field(1024, ge=1, description="dimension of the shared embedding space")
    drop_path: float = Field(0.0, ge=0.0, lt=1.0, description="stochastic depth rate of the last block")
    head_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the projection")

    @model_validator(mode="after")
    def _check_sizes(self) -> SignalModalityConfig:
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")
        if self.num_steps % self.patch_size:  # a remainder would be dropped by the stem without a word
            raise ValueError(f"num_steps {self.num_steps} is not a multiple of patch_size {self.patch_size}")
        return self


class SignalModality(Modality):
    """Base class: ``encode`` = patch ViT CLS feature of a ``(B, C, T)`` batch, ``project`` = LayerNorm →
    linear → L2 normalise."""

    Config: ClassVar[type[ModalityConfig]] = SignalModalityConfig
    #: Channels C of one preprocessed item (the sensor's channels: electrodes, axes, …).
    in_chans: ClassVar[int] = 1
    #: Preprocessed ``(B, C, T)`` batches: time augmentations (``time_mask``) act on the last axis.
    augment_axes: ClassVar[Mapping[str, int]] = {"time": -1}

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__(config, **options)
        c = self.config
        self.encoder = PatchEncoder(in_chans=self.in_chans, input_size=(1, c.num_steps),
                                    patch_size=(1, c.patch_size), stride=(1, c.patch_size), width=c.width,
                                    depth=c.num_layers, num_heads=c.num_heads, drop_path=c.drop_path,
                                    add_bias_kv=True, stem_norm=True)
        self.head = ProjectionHead(c.width, c.embed_dim, dropout=c.head_dropout)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(C, T)`` of one preprocessed item."""
        return (self.in_chans, self.config.num_steps)

    def encode(self, x: Tensor) -> Tensor:
        """``(B, C, T)`` → CLS features ``(B, width)``."""
        if x.ndim != 3 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.name}: expected a (B, {', '.join(map(str, self.input_shape))}) batch, "
                             f"got {tuple(x.shape)}; run preprocess() first")
        return self.encoder(x.unsqueeze(-2))  # (B, C, 1, T): a one-row map

    def project(self, h: Tensor) -> Tensor:
        return self.head(h)
