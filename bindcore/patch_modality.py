"""A ready-made modality around :class:`bindcore.nn.PatchEncoder`: a square C-channel map → patch ViT →
CLS → :class:`bindcore.nn.ProjectionHead`, plus loading ImageBind's matching checkpoint entries.

ImageBind's depth and thermal encoders are exactly this (1 channel, 16×16 patches, ``add_bias_kv``);
plugins subclass :class:`PatchModality`, set ``name``, ``imagebind_stem`` and a ``Config`` with their
defaults and preprocessing options, and implement ``preprocess``/``render_toy``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, model_validator
from torch import Tensor

from bindcore.config import ModalityConfig
from bindcore.errors import ConfigError
from bindcore.modality_base import Modality
from bindcore.nn import PatchEncoder, ProjectionHead

#: Architecture fields ``from_imagebind`` reads from tensor shapes rather than from the caller.
SHAPE_FIELDS = ("image_size", "patch_size", "width", "num_layers", "embed_dim")


class PatchModalityConfig(ModalityConfig):
    """Encoder sizes of a :class:`PatchModality` (defaults: a ViT-B/16 at 224 px with a 1024-d head)."""

    image_size: int = Field(224, ge=2, description="side of the square model input, pixels")
    patch_size: int = Field(16, ge=1, description="side (and stride) of the square patches")
    width: int = Field(768, ge=1, description="transformer width")
    num_layers: int = Field(12, ge=0, description="transformer blocks")
    num_heads: int = Field(12, ge=1, description="attention heads (width must be divisible by it)")
    embed_dim: int = Field(1024, ge=1, description="dimension of the shared embedding space")
    drop_path: float = Field(0.0, ge=0.0, lt=1.0, description="stochastic depth rate of the last block")
    head_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the projection")

    @model_validator(mode="after")
    def _check_sizes(self) -> PatchModalityConfig:
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")
        if self.image_size < self.patch_size:
            raise ValueError(f"image_size {self.image_size} is smaller than patch_size {self.patch_size}")
        return self


class PatchModality(Modality):
    """Base class: ``encode`` = patch ViT CLS feature, ``project`` = LayerNorm → linear → L2 normalise."""

    Config: ClassVar[type[ModalityConfig]] = PatchModalityConfig
    #: Input channels of the conv stem.
    in_chans: ClassVar[int] = 1
    #: Preprocessed ``(B, C, H, W)`` maps: spatial augmentations (aligned crops, erasing) use these axes.
    augment_axes: ClassVar[Mapping[str, int]] = {"height": -2, "width": -1}
    #: Name of the stem module under ``modality_preprocessors.<name>.`` in ImageBind checkpoints.
    imagebind_stem: ClassVar[str] = "rgbt_stem"

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__(config, **options)
        c = self.config
        self.encoder = PatchEncoder(in_chans=self.in_chans, input_size=(c.image_size, c.image_size),
                                    patch_size=c.patch_size, stride=c.patch_size, width=c.width,
                                    depth=c.num_layers, num_heads=c.num_heads, drop_path=c.drop_path,
                                    add_bias_kv=True, stem_norm=True)
        self.head = ProjectionHead(c.width, c.embed_dim, dropout=c.head_dropout)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one preprocessed item."""
        return (self.in_chans, self.config.image_size, self.config.image_size)

    def encode(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` → CLS features ``(B, width)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{self.name}: expected a (B, {', '.join(map(str, self.input_shape))}) batch, "
                             f"got {tuple(x.shape)}; run preprocess() first")
        return self.encoder(x)

    def project(self, h: Tensor) -> Tensor:
        return self.head(h)

    # -- ImageBind checkpoints ---------------------------------------------------------------------
    @classmethod
    def imagebind_key_map(cls, num_layers: int) -> dict[str, str]:
        """Our parameter name → ImageBind checkpoint key, for a model with ``num_layers`` blocks."""
        pre, trunk, head = (f"modality_{part}.{cls.name}." for part in ("preprocessors", "trunks", "heads"))
        stem = f"{pre}{cls.imagebind_stem}."
        mapping = {
            "encoder.proj.weight": f"{stem}proj.weight",
            "encoder.stem_norm.weight": f"{stem}norm_layer.weight",
            "encoder.stem_norm.bias": f"{stem}norm_layer.bias",
            "encoder.cls_token": f"{pre}cls_token",
            "encoder.pos_embed": f"{pre}pos_embedding_helper.pos_embed",
            "head.norm.weight": f"{head}0.weight",
            "head.norm.bias": f"{head}0.bias",
            "head.proj.weight": f"{head}2.weight",
        }
        block_params = ("attn.in_proj_weight", "attn.in_proj_bias", "attn.bias_k", "attn.bias_v",
                        "attn.out_proj.weight", "attn.out_proj.bias", "norm_1.weight", "norm_1.bias",
                        "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias",
                        "norm_2.weight", "norm_2.bias")
        for i in range(num_layers):
            for param in block_params:
                mapping[f"encoder.trunk.blocks.{i}.{param}"] = f"{trunk}blocks.{i}.{param}"
        return mapping

    @classmethod
    def imagebind_shapes(cls, state_dict: Mapping[str, Tensor]) -> dict[str, int]:
        """Architecture sizes read off ImageBind tensors (everything but ``num_heads``)."""
        pre, trunk, head = (f"modality_{part}.{cls.name}." for part in ("preprocessors", "trunks", "heads"))

        def get(key: str) -> Tensor:
            if key not in state_dict:
                raise ConfigError(f"{cls.name}: ImageBind state_dict has no {key!r}; pass the entries under "
                                  f"modality_*.{cls.name}. (prefixes kept)")
            return state_dict[key]

        stem = get(f"{pre}{cls.imagebind_stem}.proj.weight")
        if stem.ndim != 4 or stem.shape[1] != cls.in_chans or stem.shape[2] != stem.shape[3]:
            raise ConfigError(f"{cls.name}: stem weight has shape {tuple(stem.shape)}, expected "
                              f"(width, {cls.in_chans}, patch, patch)")
        tokens = get(f"{pre}pos_embedding_helper.pos_embed").shape[1] - 1
        grid = math.isqrt(tokens)
        if grid * grid != tokens:
            raise ConfigError(f"{cls.name}: {tokens} patch positions do not form a square grid")
        from bindcore.convert.checkpoint import count_blocks

        return {
            "image_size": grid * stem.shape[-1],
            "patch_size": int(stem.shape[-1]),
            "width": int(stem.shape[0]),
            "num_layers": count_blocks(state_dict, trunk.rstrip(".")),
            "embed_dim": int(get(f"{head}2.weight").shape[0]),
        }

    @classmethod
    def from_imagebind(cls, state_dict: Mapping[str, Tensor], **config: Any) -> PatchModality:
        """Build from ImageBind entries (a whole checkpoint is fine: other modalities' keys are ignored).

        Sizes come from tensor shapes; ``num_heads`` (not visible in shapes) and any preprocessing option
        come from ``config``. ImageBind multiplies this modality's unit embedding by a fixed scale
        (``modality_postprocessors.<name>.1.log_logit_scale``); that changes length, not direction, so it
        is not loaded: embeddings here are unit-norm.
        """
        inferred = cls.imagebind_shapes(state_dict)
        for key, value in inferred.items():
            if key in config and config[key] != value:
                raise ConfigError(f"{cls.name}: {key}={config[key]!r} conflicts with the checkpoint ({value})")
        module = cls(**{**config, **inferred})
        mapping = cls.imagebind_key_map(module.config.num_layers)
        ours = module.state_dict()
        problems = []
        for name, key in mapping.items():
            if key not in state_dict:
                problems.append(f"missing {key}")
            elif tuple(state_dict[key].shape) != tuple(ours[name].shape):
                problems.append(f"{key}: shape {tuple(state_dict[key].shape)} != {tuple(ours[name].shape)}")
        mine = tuple(f"modality_{part}.{cls.name}." for part in ("preprocessors", "trunks", "heads"))
        expected = set(mapping.values())
        problems += [f"unexpected {key}" for key in state_dict if key.startswith(mine) and key not in expected]
        if problems:
            raise ConfigError(f"{cls.name}: cannot load ImageBind weights: " + "; ".join(problems[:10]))
        module.load_state_dict({name: state_dict[key].detach().float() for name, key in mapping.items()},
                               strict=True)
        return module
