"""ImageBind's vision and text towers as a standard open_clip ``CLIP`` model.

ImageBind's image and text encoders are OpenCLIP ViT-H/14 with different parameter names, so they
map onto open_clip's ``VisionTransformer`` and text transformer by renaming plus two re-layouts:

* vision stem: ``Conv3d`` with a 2-frame kernel applied to an image repeated over 2 frames equals a
  ``Conv2d`` whose kernel is the Conv3d kernel summed over time;
* heads: ImageBind stores ``Linear(width, dim).weight`` (``dim × width``); open_clip stores the
  projection matrix ``width × dim`` and computes ``x @ proj``, so it is transposed.

Every LayerNorm in both towers uses eps 1e-6 in ImageBind (open_clip's default is 1e-5); open_clip's
``norm_kwargs`` config key carries that. The output is an open_clip ``local-dir:`` folder
(``open_clip_config.json`` + ``open_clip_model.safetensors``), loadable with
``open_clip.create_model("local-dir:PATH")``. Everything is a view of the source tensors except the
summed stem kernel, so nothing large is copied before the streamed write.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bindcore.convert.checkpoint import count_blocks, require
from bindcore.convert.pos_embed import resize_pos_embed_like_imagebind
from bindcore.errors import ConfigError
from bindcore.safetensors_io import write_safetensors

OPEN_CLIP_CONFIG_FILE = "open_clip_config.json"
OPEN_CLIP_WEIGHTS_FILE = "open_clip_model.safetensors"
IMAGEBIND_LN_EPS = 1e-6
# OpenAI CLIP normalisation, which ImageBind's image loader uses (spec §3.2).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_BLOCK_RENAMES = {
    "attn.in_proj_weight": "attn.in_proj_weight",
    "attn.in_proj_bias": "attn.in_proj_bias",
    "attn.out_proj.weight": "attn.out_proj.weight",
    "attn.out_proj.bias": "attn.out_proj.bias",
    "norm_1.weight": "ln_1.weight",
    "norm_1.bias": "ln_1.bias",
    "norm_2.weight": "ln_2.weight",
    "norm_2.bias": "ln_2.bias",
    "mlp.fc1.weight": "mlp.c_fc.weight",
    "mlp.fc1.bias": "mlp.c_fc.bias",
    "mlp.fc2.weight": "mlp.c_proj.weight",
    "mlp.fc2.bias": "mlp.c_proj.bias",
}


def _convert_blocks(sd: Mapping[str, Tensor], src_prefix: str, dst_prefix: str) -> tuple[dict[str, Tensor], int]:
    depth = count_blocks(sd, src_prefix)
    if depth == 0:
        raise ConfigError(f"{src_prefix}: no transformer blocks found")
    out: dict[str, Tensor] = {}
    for index in range(depth):
        block = f"{src_prefix}.blocks.{index}."
        extra = [k for k in sd if k.startswith(block) and k[len(block):] not in _BLOCK_RENAMES]
        if extra:
            # e.g. bias_k/bias_v: open_clip's attention has no learned extra key/value token
            raise ConfigError(f"{src_prefix}: cannot map {extra[0]!r} onto an open_clip transformer block")
        for src, dst in _BLOCK_RENAMES.items():
            out[f"{dst_prefix}.resblocks.{index}.{dst}"] = require(sd, block + src)
    return out, depth


def _mlp_ratio(sd: Mapping[str, Tensor], prefix: str, width: int) -> float:
    hidden = require(sd, f"{prefix}.blocks.0.mlp.fc1.weight", 2).shape[0]
    return hidden / width


def _check_heads(name: str, width: int, heads: int) -> None:
    if heads < 1 or width % heads:
        raise ConfigError(f"{name}: width {width} is not divisible by num_heads {heads} "
                          f"(pass the right value with --heads {name}=N)")


def check_image_size(image_size: int, patch_size: int) -> None:
    """An ``image_size`` the vision tower can take: a positive multiple of its patch size."""
    if image_size % patch_size or image_size < patch_size:
        raise ConfigError(f"--image-size {image_size}: image size {image_size} is not a multiple of the patch "
                          f"size {patch_size} (e.g. {max(1, round(image_size / patch_size)) * patch_size})")


def convert_vision_tower(sd: Mapping[str, Tensor], *, num_heads: int,
                         image_size: int | None = None) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """ImageBind ``vision`` entries → (open_clip ``vision_cfg``, ``visual.*`` state dict).

    ``image_size`` (a multiple of the patch size) resizes the position embeddings the way ImageBind does on the
    fly for other input sizes (bicubic, see :mod:`bindcore.convert.pos_embed`), so the anchor takes that size.
    """
    pre = "modality_preprocessors.vision"
    trunk = "modality_trunks.vision"
    stem = require(sd, f"{pre}.rgbt_stem.proj.1.weight", 5)  # (width, 3, frames, patch, patch)
    width, channels, _frames, patch_h, patch_w = stem.shape
    if channels != 3 or patch_h != patch_w:
        raise ConfigError(f"{pre}: unexpected stem kernel shape {tuple(stem.shape)} (want (width, 3, T, p, p))")
    pos = require(sd, f"{pre}.pos_embedding_helper.pos_embed", 3)[0]  # (1 + grid², width)
    grid = math.isqrt(pos.shape[0] - 1)
    if grid * grid != pos.shape[0] - 1:
        raise ConfigError(f"{pre}: {pos.shape[0] - 1} patch positions do not form a square grid")
    if image_size is not None and image_size != grid * patch_h:
        check_image_size(image_size, patch_h)
        grid = image_size // patch_h
        pos = resize_pos_embed_like_imagebind(pos, (grid, grid))
    head_norm_w = require(sd, "modality_heads.vision.0.weight", 1)
    head_proj = require(sd, "modality_heads.vision.2.weight", 2)  # (dim, width)
    _check_heads("vision", width, num_heads)

    out = {
        # Repeating an image over T frames then applying the Conv3d == Conv2d with the kernel summed over T.
        "visual.conv1.weight": stem.sum(dim=2),
        "visual.class_embedding": require(sd, f"{pre}.cls_token", 3).reshape(width),
        "visual.positional_embedding": pos,
        "visual.ln_post.weight": head_norm_w,
        "visual.ln_post.bias": require(sd, "modality_heads.vision.0.bias", 1),
        "visual.proj": head_proj.t(),
    }
    has_pre_ln = f"{trunk}.pre_transformer_layer.0.weight" in sd
    if has_pre_ln:
        out["visual.ln_pre.weight"] = sd[f"{trunk}.pre_transformer_layer.0.weight"]
        out["visual.ln_pre.bias"] = require(sd, f"{trunk}.pre_transformer_layer.0.bias", 1)
    blocks, depth = _convert_blocks(sd, trunk, "visual.transformer")
    out.update(blocks)
    cfg = {
        "image_size": grid * patch_h,
        "patch_size": patch_h,
        "width": width,
        "layers": depth,
        "head_width": width // num_heads,
        "mlp_ratio": _mlp_ratio(sd, trunk, width),
        "no_ln_pre": not has_pre_ln,
        "pool_type": "tok",
        "norm_kwargs": {"eps": IMAGEBIND_LN_EPS},
    }
    return cfg, out


def convert_text_tower(sd: Mapping[str, Tensor], *, num_heads: int) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """ImageBind ``text`` entries → (open_clip ``text_cfg``, top-level text state dict of ``CLIP``)."""
    pre = "modality_preprocessors.text"
    trunk = "modality_trunks.text"
    tokens = require(sd, f"{pre}.token_embedding.weight", 2)  # (vocab, width)
    vocab, width = tokens.shape
    pos = require(sd, f"{pre}.pos_embed", 3)[0]  # (context, width)
    _check_heads("text", width, num_heads)
    if f"{pre}.mask" in sd:
        mask = sd[f"{pre}.mask"]
        causal = torch.full(mask.shape, float("-inf")).triu_(1)
        if not torch.equal(mask, causal):  # open_clip rebuilds the mask; only the causal one is supported
            raise ConfigError(f"{pre}.mask is not the causal mask open_clip uses")
    out = {
        "token_embedding.weight": tokens,
        "positional_embedding": pos,
        "ln_final.weight": require(sd, "modality_heads.text.proj.0.weight", 1),
        "ln_final.bias": require(sd, "modality_heads.text.proj.0.bias", 1),
        "text_projection": require(sd, "modality_heads.text.proj.1.weight", 2).t(),
    }
    blocks, depth = _convert_blocks(sd, trunk, "transformer")
    out.update(blocks)
    cfg = {
        "context_length": pos.shape[0],
        "vocab_size": vocab,
        "width": width,
        "heads": num_heads,
        "layers": depth,
        "mlp_ratio": _mlp_ratio(sd, trunk, width),
        "pool_type": "argmax",
        "norm_kwargs": {"eps": IMAGEBIND_LN_EPS},
    }
    return cfg, out


def imagebind_to_open_clip(vision: Mapping[str, Tensor], text: Mapping[str, Tensor], *, vision_heads: int,
                           text_heads: int, image_size: int | None = None) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Both towers → (``open_clip_config.json`` content, full open_clip ``CLIP`` state dict)."""
    vision_cfg, vision_sd = convert_vision_tower(vision, num_heads=vision_heads, image_size=image_size)
    text_cfg, text_sd = convert_text_tower(text, num_heads=text_heads)
    vision_dim = vision_sd["visual.proj"].shape[1]
    text_dim = text_sd["text_projection"].shape[1]
    if vision_dim != text_dim:
        raise ConfigError(f"vision head projects to {vision_dim} dims but text head to {text_dim}")
    scale_key = "modality_postprocessors.text.1.log_logit_scale"
    logit_scale = text[scale_key].reshape(()) if scale_key in text else torch.tensor(math.log(1 / 0.07))
    state = {**vision_sd, **text_sd, "logit_scale": logit_scale}
    config = {
        "model_cfg": {"embed_dim": vision_dim, "vision_cfg": vision_cfg, "text_cfg": text_cfg},
        "preprocess_cfg": {
            "size": vision_cfg["image_size"],
            "mean": list(CLIP_MEAN),
            "std": list(CLIP_STD),
            "interpolation": "bicubic",
            "resize_mode": "shortest",  # Resize(short side) + CenterCrop, as ImageBind's image loader
        },
    }
    return config, state


def write_open_clip_dir(path: str | os.PathLike[str], config: Mapping[str, Any], state: Mapping[str, Tensor], *,
                        license: str | None = None, source: str | None = None) -> Path:
    """Write an open_clip ``local-dir:`` folder; licence and source are recorded under ``"bindcore"``."""
    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    content = dict(config)
    content["bindcore"] = {"license": license, "source": source}
    metadata = {"format": "pt", **({"license": license} if license else {}), **({"source": source} if source else {})}
    write_safetensors(target / OPEN_CLIP_WEIGHTS_FILE, state, metadata=metadata)
    (target / OPEN_CLIP_CONFIG_FILE).write_text(json.dumps(content, indent=2) + "\n")
    return target


def read_open_clip_license(path: str | os.PathLike[str]) -> str | None:
    """The licence recorded in an open_clip folder written by :func:`write_open_clip_dir` (None if absent)."""
    config_path = Path(path) / OPEN_CLIP_CONFIG_FILE
    if not config_path.is_file():
        return None
    return (json.loads(config_path.read_text()).get("bindcore") or {}).get("license")
