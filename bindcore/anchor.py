"""The frozen anchor: an OpenCLIP image/text model that every other modality is bound to.

ImageBind keeps the OpenCLIP ViT-H image and text towers frozen and trains the other encoders against
them. :class:`FrozenAnchor` wraps an ``open_clip`` model so that it *cannot* train: no parameter requires
grad, it stays in eval mode whatever ``.train()`` is called with, and every forward runs under
``torch.no_grad()`` (not ``inference_mode``: its outputs are used as constants inside differentiable
losses, which inference tensors do not allow).

Where the weights come from is described by :class:`AnchorConfig`:

* an open_clip model name + pretrained tag (``ViT-H-14`` + ``laion2b_s32b_b79k`` is ImageBind's anchor),
  or + a local checkpoint file;
* an open_clip ``local-dir:`` folder (``open_clip_config.json`` + weights);
* a custom architecture (an open_clip model config dict: ``embed_dim``, ``vision_cfg``, ``text_cfg``),
  optionally with a checkpoint file. :func:`tiny_anchor_config` builds small ones for tests and the demo.

Nothing waits on the network when it cannot help: weights are looked up in the local caches first and,
when absent while offline (``HF_HUB_OFFLINE=1`` or no route to the hub), :class:`AnchorUnavailableError`
is raised at once, saying how to pass a local file instead.

:func:`load_anchor` caches anchors per config, so the vision and text modalities built from one config
share one model in memory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from torch import Tensor, nn

from bindcore.config import ModalityConfig
from bindcore.errors import AnchorUnavailableError, ConfigError
from bindcore.io import warn_if_non_commercial
from bindcore.modality_base import Modality
from bindcore.nn.linear import linear, linear_act

#: ImageBind's anchor (OpenCLIP ViT-H/14 trained on LAION-2B).
DEFAULT_MODEL = "ViT-H-14"
DEFAULT_PRETRAINED = "laion2b_s32b_b79k"
LOCAL_DIR_PREFIX = "local-dir:"
HF_HUB_PREFIX = "hf-hub:"
#: File names written by :func:`save_anchor` for a ``local-dir:`` folder (what open_clip looks for).
LOCAL_DIR_CONFIG = "open_clip_config.json"
LOCAL_DIR_WEIGHTS = "open_clip_model.safetensors"
#: OpenAI CLIP normalisation, used by ImageBind and by open_clip's defaults.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_PROBE_TIMEOUT_S = 2.0


class AnchorConfig(BaseModel):
    """Where the frozen anchor comes from. Exactly one source:

    * ``model`` (+ ``pretrained``): an open_clip model name with a pretrained tag or a local checkpoint
      file (``pretrained=None`` gives a seeded random init); ``model="local-dir:/folder"`` reads an
      open_clip folder (``pretrained`` must then be unset).
    * ``arch`` (+ ``checkpoint``): a custom open_clip model config dict, optionally with a weights file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str | None = DEFAULT_MODEL
    pretrained: str | None = DEFAULT_PRETRAINED
    arch: dict[str, Any] | None = None
    checkpoint: str | None = None
    #: Seed for weights that are randomly initialised (no checkpoint), so such anchors are reproducible.
    seed: int = 0
    #: Download cache folder (open_clip / Hugging Face defaults when unset).
    cache_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_source_defaults(cls, data: Any) -> Any:
        # The defaults describe ImageBind's anchor; when another source is chosen they must not linger.
        if isinstance(data, Mapping):
            data = dict(data)
            if data.get("arch") is not None:
                data.setdefault("model", None)
                data.setdefault("pretrained", None)
            # The default tag belongs to ViT-H-14; another name (or a local-dir: folder) starts untagged.
            if isinstance(data.get("model"), str) and data["model"] != DEFAULT_MODEL:
                data.setdefault("pretrained", None)
        return data

    @field_validator("arch")
    @classmethod
    def _check_arch(cls, arch: dict[str, Any] | None) -> dict[str, Any] | None:
        if arch is None:
            return None
        missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in arch]
        if missing:
            raise ValueError(f"an open_clip model config needs {', '.join(missing)} "
                             f"(see bindcore.anchor.tiny_anchor_config for an example)")
        for key in ("vision_cfg", "text_cfg"):
            if not isinstance(arch[key], Mapping):
                raise ValueError(f"{key} must be a mapping, got {type(arch[key]).__name__}")
        return arch

    @model_validator(mode="after")
    def _check_one_source(self) -> AnchorConfig:
        if self.arch is not None and self.model is not None:
            raise ValueError("give either 'model' (an open_clip name or local-dir:) or 'arch' (a custom config), "
                             "not both")
        if self.arch is None and self.model is None:
            raise ValueError("give 'model' (e.g. 'ViT-H-14') or 'arch' (a custom open_clip model config)")
        if self.checkpoint is not None and self.arch is None:
            raise ValueError("'checkpoint' goes with 'arch'; with a model name pass the file as 'pretrained'")
        if self.arch is not None and self.pretrained is not None:
            raise ValueError("'pretrained' goes with 'model'; with 'arch' pass a weights file as 'checkpoint'")
        if self.model and self.model.startswith((LOCAL_DIR_PREFIX, HF_HUB_PREFIX)) and self.pretrained:
            raise ValueError(f"'pretrained' cannot be combined with {self.model.split(':')[0]}: models "
                             f"(their weights come from the folder / repository)")
        return self

    def describe(self) -> str:
        """A short human-readable description of the source, for messages."""
        if self.arch is not None:
            return f"custom arch (embed_dim {self.arch['embed_dim']})" + (
                f" with checkpoint {self.checkpoint}" if self.checkpoint else " (random init)")
        if self.pretrained:
            return f"open_clip {self.model} pretrained {self.pretrained}"
        if self.model and self.model.startswith((LOCAL_DIR_PREFIX, HF_HUB_PREFIX)):
            return self.model
        return f"open_clip {self.model} (random init)"


def tiny_anchor_config(
    embed_dim: int = 32,
    image_size: int = 32,
    patch_size: int = 8,
    width: int = 64,
    layers: int = 2,
    heads: int = 2,
    text_width: int | None = None,
    text_layers: int | None = None,
    text_heads: int | None = None,
    context_length: int = 77,
    vocab_size: int = 49408,
) -> dict[str, Any]:
    """A small open_clip CLIP architecture (vision ViT + text transformer) for tests and the demo.

    The vocabulary stays CLIP's 49 408 BPE ids so the real tokenizer works; everything else is tiny.
    Pass the result as ``AnchorConfig(arch=...)``.
    """
    text_width = text_width or width
    text_heads = text_heads or heads
    if width % heads or text_width % text_heads:
        raise ConfigError(f"width {width}/{text_width} must be divisible by heads {heads}/{text_heads}")
    if image_size % patch_size:
        raise ConfigError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": layers, "width": width,
                       "head_width": width // heads, "patch_size": patch_size},
        "text_cfg": {"context_length": context_length, "vocab_size": vocab_size, "width": text_width,
                     "heads": text_heads, "layers": text_layers or layers},
    }


# ------------------------------------------------------------------------------------------------------
# The frozen module
# ------------------------------------------------------------------------------------------------------
class FrozenAnchor(nn.Module):
    """An open_clip model that cannot train. Build with :func:`load_anchor` or :func:`freeze`.

    ``encode_image``/``encode_text`` give L2-normalised embeddings by default. For modalities that expose
    the two-step ``encode``/``project`` contract, ``image_features``/``text_features`` return the pooled
    trunk features *before* the tower's projection and ``project_image``/``project_text`` apply it (for
    the standard open_clip ViT and CLIP text transformer; other towers pool and project in one step, so
    their "features" are already projected and ``project_*`` only normalises).

    Standard open_clip towers run through an exact SDPA forward of their own weights (packed in-projection,
    flash attention, ``is_causal`` text cut after the batch's last EOT, class-token-only last image block),
    ≈ 1.1× (images) to 3× (texts) faster than open_clip's blocks on CPU; anything else runs open_clip's own
    forward. ``last_path``/``fallback_reason`` say which ran; ``use_fast_path = False`` forces open_clip's.
    """

    def __init__(self, model: nn.Module, *, arch: Mapping[str, Any] | None = None,
                 config: AnchorConfig | None = None):
        super().__init__()
        if not hasattr(model, "encode_image") or not hasattr(model, "encode_text"):
            raise ConfigError(f"the anchor must be an open_clip CLIP-style model, got {type(model).__name__}")
        model.requires_grad_(False)
        self.model = model
        #: The open_clip model config this anchor was built from (needed to save it), when known.
        self.arch: dict[str, Any] | None = copy.deepcopy(dict(arch)) if arch is not None else None
        self.config = config
        #: Licence / source of the weights when the folder records them (set by ``bindcore convert``), else None.
        self.weights_license: str | None = getattr(model, "weights_license", None)
        self.weights_source: str | None = getattr(model, "weights_source", None)
        #: Run standard open_clip towers through the exact SDPA forward (``False``: always open_clip's own).
        self.use_fast_path = True
        #: Which forward the last call of each tower ran ("sdpa" or "open_clip"), and why it fell back.
        self.last_path: dict[str, str] = {}
        self.fallback_reason: dict[str, str | None] = {}
        super().train(False)

    # -- frozen behaviour ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> FrozenAnchor:
        """Always eval: the anchor's dropout/drop-path must never switch on."""
        return super().train(False)

    def requires_grad_(self, requires_grad: bool = True) -> FrozenAnchor:
        if requires_grad:
            raise RuntimeError("the anchor is frozen; its parameters never require grad")
        return super().requires_grad_(False)

    # -- what the towers expect ----------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Dimension of the shared embedding space (the towers' output size)."""
        if self.arch is not None:
            return int(self.arch["embed_dim"])
        visual = self.model.visual
        dim = getattr(visual, "output_dim", None)
        if dim is None:
            with torch.no_grad():
                size = self.image_size
                dim = self.encode_image(torch.zeros(1, 3, *size, device=self.device)).shape[-1]
        return int(dim)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def preprocess_cfg(self) -> dict[str, Any]:
        from open_clip import get_model_preprocess_cfg

        return dict(get_model_preprocess_cfg(self.model))

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) the image tower expects."""
        size = getattr(self.model.visual, "image_size", None) or self.preprocess_cfg.get("size", 224)
        if isinstance(size, int):
            return (size, size)
        return (int(size[0]), int(size[1]))

    @property
    def image_mean(self) -> tuple[float, float, float]:
        return tuple(self.preprocess_cfg.get("mean", CLIP_MEAN))  # type: ignore[return-value]

    @property
    def image_std(self) -> tuple[float, float, float]:
        return tuple(self.preprocess_cfg.get("std", CLIP_STD))  # type: ignore[return-value]

    @property
    def context_length(self) -> int:
        """Number of token ids the text tower takes."""
        length = getattr(self.model, "context_length", None)
        if length is None:
            length = getattr(getattr(self.model, "text", None), "context_length", None)
        return int(length or 77)

    @property
    def vocab_size(self) -> int:
        size = getattr(self.model, "vocab_size", None)
        if size is None:
            size = getattr(getattr(self.model, "text", None), "vocab_size", None)
        return int(size or 49408)

    @property
    def tokenizer(self) -> Any:
        """open_clip's tokenizer for this anchor (bind-text uses its own ImageBind-exact tokenizer)."""
        import open_clip

        text_cfg = (self.arch or {}).get("text_cfg", {})
        if text_cfg.get("hf_tokenizer_name"):
            from open_clip.tokenizer import HFTokenizer

            return HFTokenizer(text_cfg["hf_tokenizer_name"], context_length=self.context_length)
        return open_clip.SimpleTokenizer(context_length=self.context_length)

    # -- forward (no autograd) -----------------------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, images: Tensor, normalize: bool = True) -> Tensor:
        """(B, 3, H, W) normalised pixels → (B, D) image embeddings."""
        return self.project_image(self.image_features(images), normalize=normalize)

    @torch.no_grad()
    def encode_text(self, token_ids: Tensor, normalize: bool = True) -> Tensor:
        """(B, L) int64 token ids → (B, D) text embeddings."""
        return self.project_text(self.text_features(token_ids), normalize=normalize)

    @torch.no_grad()
    def image_features(self, images: Tensor) -> Tensor:
        """Pooled image-trunk features before the tower's projection (see the class docstring)."""
        visual = self.model.visual
        images = images.to(device=self.device, dtype=self.dtype)
        if _has_split_vision(visual):
            return self.pool_image_tokens(visual._embeds(images))
        self._record_path("image", "visual is not open_clip's VisionTransformer")
        return visual(images)

    @torch.no_grad()
    def pool_image_tokens(self, tokens: Tensor) -> Tensor:
        """Embedded image tokens (B, 1 + patches, width), after ``ln_pre`` → the image trunk → pooled features.

        Runs the SDPA path when the tower is a standard open_clip ViT (see :attr:`last_path`), else open_clip's
        own ``visual.transformer``; both give the same numbers. bind-vision's video path feeds its tokens here.
        """
        visual = self.model.visual
        blocker = image_fast_path_blocker(visual) if self.use_fast_path else "fast path switched off"
        self._record_path("image", blocker)
        if blocker is None:
            # With token pooling only the class token of the last block is read.
            x = _sdpa_blocks(visual.transformer, tokens, causal=False, first_token_only=visual.pool_type == "tok")
        else:
            x = visual.transformer(tokens)
        pooled, _ = visual._pool(x)
        return pooled

    @torch.no_grad()
    def project_image(self, features: Tensor, normalize: bool = True) -> Tensor:
        visual = self.model.visual
        if _has_split_vision(visual) and visual.proj is not None:
            features = features @ visual.proj
        return F.normalize(features, dim=-1) if normalize else features

    @torch.no_grad()
    def text_features(self, token_ids: Tensor) -> Tensor:
        """Pooled text-trunk features (at the EOT token) before the tower's projection."""
        model = self.model
        token_ids = token_ids.to(self.device)
        blocker = text_fast_path_blocker(model, token_ids.shape[1]) if self.use_fast_path else "fast path switched off"
        self._record_path("text", blocker)
        if blocker is None:
            return self._text_features_sdpa(token_ids)
        if not _has_split_text(model):
            return model.encode_text(token_ids)
        from open_clip.transformer import text_global_pool

        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(token_ids).to(cast_dtype)
        x = x + model.positional_embedding[: token_ids.shape[1]].to(cast_dtype)
        mask = model.attn_mask
        if mask is not None:
            mask = mask[: token_ids.shape[1], : token_ids.shape[1]]
        x = model.transformer(x, attn_mask=mask)
        x = model.ln_final(x)
        return text_global_pool(x, token_ids, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))

    def _text_features_sdpa(self, token_ids: Tensor) -> Tensor:
        model = self.model
        if model.text_pool_type == "argmax":  # the first highest id: CLIP's EOT, the last id of its vocabulary
            pool_at = token_ids.argmax(dim=-1)
        else:
            pool_at = (token_ids == model.text_eos_id).int().argmax(dim=-1)
        # Under a causal mask no position sees a later one, so everything after the batch's last pooled
        # position cannot change the result: cut it off (typical captions use ~15 of 77 positions).
        length = int(pool_at.max()) + 1
        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(token_ids[:, :length]).to(cast_dtype)
        x = x + model.positional_embedding[:length].to(cast_dtype)
        x = _sdpa_blocks(model.transformer, x, causal=True)
        # ln_final is per token, so pooling first is exact and normalises B rows instead of B × length.
        return model.ln_final(x[torch.arange(x.shape[0], device=x.device), pool_at])

    def _record_path(self, tower: str, blocker: str | None) -> None:
        self.last_path[tower] = SDPA_PATH if blocker is None else OPEN_CLIP_PATH
        self.fallback_reason[tower] = blocker

    @torch.no_grad()
    def project_text(self, features: Tensor, normalize: bool = True) -> Tensor:
        model = self.model
        if _has_split_text(model) and model.text_projection is not None:
            projection = model.text_projection
            features = projection(features) if isinstance(projection, nn.Linear) else features @ projection
        return F.normalize(features, dim=-1) if normalize else features

    @torch.no_grad()
    def forward(self, images: Tensor | None = None, token_ids: Tensor | None = None) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        if images is not None:
            out["image"] = self.encode_image(images)
        if token_ids is not None:
            out["text"] = self.encode_text(token_ids)
        return out

    def extra_repr(self) -> str:
        source = self.config.describe() if self.config is not None else "in-memory model"
        return f"source={source!r}, embed_dim={self.embed_dim}"


def _has_split_vision(visual: nn.Module) -> bool:
    from open_clip.transformer import VisionTransformer

    return isinstance(visual, VisionTransformer) and not getattr(visual, "output_tokens", False)


def _has_split_text(model: nn.Module) -> bool:
    from open_clip import CLIP

    return isinstance(model, CLIP)


# ------------------------------------------------------------------------------------------------------
# Fast exact forward of open_clip's standard towers
# ------------------------------------------------------------------------------------------------------
# open_clip's blocks run ``nn.MultiheadAttention``: with a causal mask (text) PyTorch leaves its fast path,
# transposes the batch and runs the packed in-projection as a broadcast bmm; without a mask (images) the fast
# path materialises the softmax. The loop below runs the *same* parameters through packed ``F.linear`` +
# ``F.scaled_dot_product_attention`` (flash kernel, ``is_causal`` instead of a mask), batch-first throughout.
# It covers only blocks whose maths it reproduces exactly; anything else returns a reason and the caller
# falls back to open_clip's own forward.
SDPA_PATH = "sdpa"
OPEN_CLIP_PATH = "open_clip"


def _blocks_unsupported(transformer: nn.Module) -> str | None:
    """Why ``transformer``'s blocks cannot run through :func:`_sdpa_blocks` (None: they can)."""
    from open_clip.transformer import ResidualAttentionBlock, Transformer

    if type(transformer) is not Transformer:
        return f"transformer is {type(transformer).__name__}, not open_clip's Transformer"
    for index, block in enumerate(transformer.resblocks):
        if type(block) is not ResidualAttentionBlock:  # e.g. CustomResidualAttentionBlock: qk-norm, scaled cosine
            return f"block {index} is {type(block).__name__}"
        if hasattr(block, "ln_1_kv"):
            return f"block {index} is a cross-attention block"
        attn = block.attn
        if (type(attn) is not nn.MultiheadAttention or not attn._qkv_same_embed_dim or attn.in_proj_weight is None
                or attn.bias_k is not None or attn.add_zero_attn):
            return f"block {index} has a non-standard attention (separate q/k/v weights, bias_kv or zero_attn)"
    return None


def _sdpa_blocks(transformer: nn.Module, x: Tensor, *, causal: bool, first_token_only: bool = False) -> Tensor:
    """open_clip ``ResidualAttentionBlock`` stack on batch-first ``x`` (B, L, D), computed with SDPA.

    ``first_token_only``: the caller reads only token 0 of the output, so the last block computes its
    query, attention output and MLP for that row alone (keys/values still come from every token): exact.
    """
    blocks = transformer.resblocks
    for index, block in enumerate(blocks):
        attn = block.attn
        batch, length, dim = x.shape
        heads = attn.num_heads
        h = block.ln_1(x)
        if first_token_only and index == len(blocks) - 1 and not causal:
            bias = attn.in_proj_bias
            q = linear(h[:, :1], attn.in_proj_weight[:dim], None if bias is None else bias[:dim])
            k, v = linear(h, attn.in_proj_weight[dim:], None if bias is None else bias[dim:]).chunk(2, dim=-1)
            x = x[:, :1]
        else:
            q, k, v = linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        rows = q.shape[1]
        q = q.reshape(batch, rows, heads, -1).transpose(1, 2)
        k = k.reshape(batch, length, heads, -1).transpose(1, 2)
        v = v.reshape(batch, length, heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        out = out.transpose(1, 2).reshape(batch, rows, dim)
        x = x + block.ls_1(linear(out, attn.out_proj.weight, attn.out_proj.bias))
        x = x + block.ls_2(_open_clip_mlp(block.mlp, block.ln_2(x)))
    return x


def _open_clip_mlp(mlp: nn.Module, x: Tensor) -> Tensor:
    """open_clip's ``c_fc → gelu → c_proj`` MLP, its GEMMs through :mod:`bindcore.nn.linear`."""
    if set(dict(mlp.named_children())) != {"c_fc", "gelu", "c_proj"} or mlp.training:
        return mlp(x)
    return linear(linear_act(x, mlp.c_fc, mlp.gelu), mlp.c_proj.weight, mlp.c_proj.bias)


def _is_causal_mask(mask: Tensor, length: int) -> bool:
    mask = mask[:length, :length]
    if mask.dtype == torch.bool:
        return torch.equal(mask.cpu(), torch.ones(length, length, dtype=torch.bool).triu(1))
    return torch.equal(mask.float().cpu(), torch.full((length, length), float("-inf")).triu(1))


def text_fast_path_blocker(model: nn.Module, length: int) -> str | None:
    """Why the SDPA text path cannot run ``model``'s text tower on ``length`` tokens (None: it can)."""
    if not _has_split_text(model):
        return f"{type(model).__name__} is not open_clip's CLIP (its text tower pools and projects in one step)"
    pool = getattr(model, "text_pool_type", None)
    if pool not in ("argmax", "eos"):
        return f"text_pool_type {pool!r} (only 'argmax' and 'eos' pool one token per text)"
    if pool == "eos" and getattr(model, "text_eos_id", None) is None:
        return "text_pool_type 'eos' without text_eos_id"
    if getattr(model, "attn_mask", None) is None:
        return "no causal attention mask (a bidirectional text tower)"
    if not _is_causal_mask(model.attn_mask, length):
        return "attn_mask is not the plain causal mask"
    return _blocks_unsupported(model.transformer)


def image_fast_path_blocker(visual: nn.Module) -> str | None:
    """Why the SDPA image path cannot run ``visual`` (None: it can)."""
    if not _has_split_vision(visual):
        return f"visual is {type(visual).__name__} (not open_clip's VisionTransformer, or it outputs tokens)"
    if getattr(visual, "attn_pool", None) is not None:
        return "attentional pooler"
    if visual.pool_type not in ("tok", "avg"):
        return f"pool_type {visual.pool_type!r}"
    return _blocks_unsupported(visual.transformer)


def freeze(model: nn.Module, *, arch: Mapping[str, Any] | None = None,
           config: AnchorConfig | None = None) -> FrozenAnchor:
    """Freeze an already-built open_clip model in place (e.g. a tiny anchor the demo just pretrained).

    Pass ``arch`` (its open_clip model config) so the anchor can later be written with :func:`save_anchor`.
    """
    if isinstance(model, FrozenAnchor):
        return model
    return FrozenAnchor(model, arch=arch, config=config)


# ------------------------------------------------------------------------------------------------------
# Building from a config
# ------------------------------------------------------------------------------------------------------
_cache: weakref.WeakValueDictionary[str, FrozenAnchor] = weakref.WeakValueDictionary()
_cache_lock = threading.Lock()


def load_anchor(config: AnchorConfig | Mapping[str, Any] | None = None, **options: Any) -> FrozenAnchor:
    """Build (or reuse) the frozen anchor described by ``config``.

    Anchors are cached per config (and the identity of the checkpoint files they read), so every modality
    built from one config shares one model; the cache holds them weakly, so an unused anchor is freed.
    """
    config = _as_config(config, options)
    key = _cache_key(config)
    with _cache_lock:
        anchor = _cache.get(key)
        if anchor is None:
            anchor = _build(config)
            _cache[key] = anchor
        return anchor


def clear_anchor_cache() -> None:
    """Forget cached anchors (the next :func:`load_anchor` rebuilds)."""
    with _cache_lock:
        _cache.clear()


def _as_config(config: AnchorConfig | Mapping[str, Any] | None, options: Mapping[str, Any]) -> AnchorConfig:
    from bindcore.config import validate_config

    if isinstance(config, AnchorConfig):
        if options:
            raise TypeError("pass either an AnchorConfig or keyword options, not both")
        return config
    return validate_config(AnchorConfig, {**(config or {}), **options}, where="anchor")


def _file_identity(path: str | os.PathLike[str]) -> str:
    try:
        stat = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{os.path.abspath(path)}:{stat.st_mtime_ns}:{stat.st_size}"


def _cache_key(config: AnchorConfig) -> str:
    parts = [config.model_dump_json()]
    if config.checkpoint:
        parts.append(_file_identity(config.checkpoint))
    if config.pretrained and os.path.isfile(config.pretrained):
        parts.append(_file_identity(config.pretrained))
    if config.model and config.model.startswith(LOCAL_DIR_PREFIX):
        folder = Path(config.model[len(LOCAL_DIR_PREFIX):])
        if folder.is_dir():
            parts += [_file_identity(p) for p in sorted(folder.iterdir()) if p.is_file()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _build(config: AnchorConfig) -> FrozenAnchor:
    # Random inits (no checkpoint) are seeded, so e.g. a tiny random anchor is the same in every process;
    # fork_rng keeps the caller's global RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.arch is not None:
            model, arch = _build_custom(config), config.arch
        elif config.model is not None and config.model.startswith(LOCAL_DIR_PREFIX):
            model, arch = _build_local_dir(config)
        else:
            model, arch = _build_named(config)
    return FrozenAnchor(model, arch=arch, config=config)


def _build_custom(config: AnchorConfig) -> nn.Module:
    from open_clip import CLIP, CustomTextCLIP, set_model_preprocess_cfg
    from open_clip.transform import PreprocessCfg

    arch = copy.deepcopy(dict(config.arch or {}))
    custom_text = bool(arch.pop("custom_text", False)) or "hf_model_name" in arch["text_cfg"]
    if "hf_model_name" in arch["text_cfg"]:
        arch["text_cfg"] = {**arch["text_cfg"], "hf_model_pretrained": False}  # never download a text base
    model_class = CustomTextCLIP if custom_text else CLIP
    try:
        model = model_class(**arch)
    except Exception as exc:
        raise ConfigError(f"anchor arch is not a valid open_clip model config: {type(exc).__name__}: {exc}") from exc
    if config.checkpoint is not None:
        _load_weights_file(model, config.checkpoint, config)
    preprocess = {**PreprocessCfg().__dict__, "size": getattr(model.visual, "image_size", 224)}
    set_model_preprocess_cfg(model, preprocess)
    return model


def _load_weights_file(model: nn.Module, path: str, config: AnchorConfig) -> None:
    from open_clip import load_checkpoint

    if not os.path.isfile(path):
        raise AnchorUnavailableError(f"anchor checkpoint file not found: {path} ({config.describe()}); "
                                     f"pass an existing weights file (.safetensors, .pt, .pth, .bin)")
    try:
        load_checkpoint(model, path, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"anchor checkpoint {path} does not match the architecture: {exc}") from exc


def _build_local_dir(config: AnchorConfig) -> tuple[nn.Module, dict[str, Any]]:
    import open_clip

    assert config.model is not None
    folder = Path(config.model[len(LOCAL_DIR_PREFIX):])
    config_file = folder / LOCAL_DIR_CONFIG
    if not config_file.is_file():
        raise AnchorUnavailableError(
            f"{config.model}: {config_file} not found; a local-dir: anchor folder needs {LOCAL_DIR_CONFIG} "
            f"(with 'model_cfg') and a weights file such as {LOCAL_DIR_WEIGHTS} "
            f"(write one with bindcore.anchor.save_anchor(anchor, folder, format='local-dir'))")
    content = json.loads(config_file.read_text())
    arch = content["model_cfg"]
    try:
        model = open_clip.create_model(config.model, pretrained_image=False, pretrained_text=False)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError(f"{config.model}: cannot build the anchor: {exc}") from exc
    # `bindcore convert` records the source's licence here (CC-BY-NC 4.0 for ImageBind's towers).
    recorded = content.get("bindcore") or {}
    model.weights_license = recorded.get("license")
    model.weights_source = recorded.get("source")
    warn_if_non_commercial(recorded, config.model)
    return model, arch


def _build_named(config: AnchorConfig) -> tuple[nn.Module, dict[str, Any] | None]:
    import open_clip

    assert config.model is not None
    if config.model.startswith(HF_HUB_PREFIX):
        raise ConfigError(f"{config.model}: hf-hub: anchors are not supported directly; download the repository "
                          f"and pass model='local-dir:/path/to/it' (or an open_clip name + pretrained file)")
    name = config.model.replace("/", "-")
    arch = open_clip.get_model_config(name)
    if arch is None:
        raise ConfigError(f"unknown open_clip model {config.model!r}; e.g. {DEFAULT_MODEL!r}, "
                          f"see open_clip.list_models(), or pass a custom 'arch'")
    checkpoint, tag_cfg = _resolve_pretrained(name, config)
    try:
        model = open_clip.create_model(name, pretrained=checkpoint, pretrained_image=False, pretrained_text=False,
                                       cache_dir=config.cache_dir)
    except RuntimeError as exc:
        raise ConfigError(f"cannot build anchor {config.describe()}: {exc}") from exc
    if tag_cfg:
        # create_model was given a file, so it did not see the tag's preprocessing (mean/std/interpolation).
        preprocess = open_clip.get_model_preprocess_cfg(model)
        preprocess.update({k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg})
        open_clip.set_model_preprocess_cfg(model, preprocess)
    return model, arch


def _resolve_pretrained(name: str, config: AnchorConfig) -> tuple[str | None, dict[str, Any] | None]:
    """The local weights file for ``config.pretrained`` (None: random init), without hanging when offline."""
    from open_clip import get_pretrained_cfg, list_pretrained_tags_by_model

    pretrained = config.pretrained
    if pretrained is None:
        return None, None
    if os.path.isfile(pretrained):
        return pretrained, None
    tag_cfg = get_pretrained_cfg(name, pretrained)
    if not tag_cfg:
        if _looks_like_path(pretrained):
            raise AnchorUnavailableError(f"anchor weights file not found: {pretrained}; pass an existing file as "
                                         f"pretrained=/path/to/weights (.safetensors, .pt, .bin)")
        tags = list_pretrained_tags_by_model(name)
        raise ConfigError(f"{pretrained!r} is neither a pretrained tag of open_clip {name} nor an existing file "
                          f"(tags: {', '.join(tags) if tags else 'none'})")
    if tag_cfg.get("file"):
        return str(tag_cfg["file"]), tag_cfg
    cached = _cached_weights(tag_cfg, config.cache_dir)
    if cached is not None:
        return cached, tag_cfg
    where = _download_source(tag_cfg)
    reason = _offline_reason(where)
    if reason is not None:
        raise AnchorUnavailableError(_unavailable_message(name, config, where, reason))
    from open_clip import download_pretrained

    try:
        return download_pretrained(tag_cfg, cache_dir=config.cache_dir), tag_cfg
    except Exception as exc:  # network errors come in many types; all mean the same thing here
        raise AnchorUnavailableError(
            _unavailable_message(name, config, where, f"download failed: {type(exc).__name__}: {exc}")) from exc


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))


def _hub_candidates(tag_cfg: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(repo id, file names open_clip would try, in its order) for a tag served from the Hugging Face hub."""
    from open_clip.constants import HF_WEIGHTS_NAME

    repo_id, filename = os.path.split(str(tag_cfg["hf_hub"]))
    filename = filename or HF_WEIGHTS_NAME
    try:
        from open_clip.pretrained import _get_safe_alternatives

        names = [*_get_safe_alternatives(filename), filename]
    except ImportError:  # private helper: fall back to the rule it implements
        names = [filename]
    return repo_id, names


def _cached_weights(tag_cfg: Mapping[str, Any], cache_dir: str | None) -> str | None:
    if tag_cfg.get("hf_hub"):
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        repo_id, names = _hub_candidates(tag_cfg)
        for filename in names:
            path = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
            if isinstance(path, str) and os.path.isfile(path):
                return path
        return None
    url = tag_cfg.get("url")
    if url:
        target = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        return str(target) if target.is_file() else None
    return None


def _download_source(tag_cfg: Mapping[str, Any]) -> str:
    if tag_cfg.get("hf_hub"):
        from huggingface_hub import constants

        repo_id, names = _hub_candidates(tag_cfg)
        return f"{constants.ENDPOINT}/{repo_id} ({' or '.join(names)})"
    return str(tag_cfg.get("url", ""))


def hub_offline() -> bool:
    """True when the Hugging Face hub is switched off by the environment (``HF_HUB_OFFLINE``)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _offline_reason(where: str) -> str | None:
    """Why a download cannot work right now (None: try it). Checked before downloading, to fail fast."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set (offline)"
    host = urlparse(where.split(" ")[0]).hostname
    # Behind a proxy a direct probe says nothing; let the download itself decide.
    behind_proxy = any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"))
    if host and not behind_proxy and not _reachable(host):
        return f"{host} cannot be reached (offline?)"
    return None


def _reachable(host: str, port: int = 443) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _unavailable_message(name: str, config: AnchorConfig, where: str, reason: str) -> str:
    return (
        f"cannot obtain the anchor weights for open_clip {name} pretrained {config.pretrained!r}: they are not in "
        f"the local cache and {reason}. Get the weights file on a machine with access to {where}, then pass it: "
        f"AnchorConfig(model={name!r}, pretrained='/path/to/open_clip_model.safetensors'), or an open_clip folder "
        f"(open_clip_config.json + weights): AnchorConfig(model='local-dir:/path/to/folder'); "
        f"for a quick offline test use a tiny random anchor: AnchorConfig(arch=bindcore.anchor.tiny_anchor_config())"
    )


# ------------------------------------------------------------------------------------------------------
# Saving
# ------------------------------------------------------------------------------------------------------
def save_anchor(anchor: FrozenAnchor | nn.Module, path: str | os.PathLike[str], *,
                format: Literal["file", "local-dir"] = "file", arch: Mapping[str, Any] | None = None,
                seed: int = 0) -> AnchorConfig:
    """Write the anchor's weights and return the :class:`AnchorConfig` that loads them back.

    ``format="file"``: one safetensors file at ``path`` (config ``arch=..., checkpoint=path``);
    ``format="local-dir"``: an open_clip folder with ``open_clip_config.json`` + ``open_clip_model.safetensors``
    (config ``model="local-dir:path"``). ``arch`` is needed when the anchor does not know its own config.
    """
    from open_clip import get_model_preprocess_cfg
    from safetensors.torch import save_file

    model = anchor.model if isinstance(anchor, FrozenAnchor) else anchor
    arch = arch if arch is not None else getattr(anchor, "arch", None)
    if arch is None:
        raise ConfigError("cannot save an anchor whose architecture is unknown; pass arch=<open_clip model config>")
    # Tied/shared tensors are not allowed by safetensors; clone makes every entry its own storage.
    state = {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
    target = Path(path)
    if format == "file":
        target.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(target))
        return AnchorConfig(arch=dict(arch), checkpoint=str(target), seed=seed)
    if format == "local-dir":
        target.mkdir(parents=True, exist_ok=True)
        preprocess = {k: v for k, v in dict(get_model_preprocess_cfg(model)).items()
                      if k in ("size", "mode", "mean", "std", "interpolation", "resize_mode", "fill_color")}
        (target / LOCAL_DIR_CONFIG).write_text(
            json.dumps({"model_cfg": dict(arch), "preprocess_cfg": _jsonable(preprocess)}, indent=2) + "\n")
        save_file(state, str(target / LOCAL_DIR_WEIGHTS))
        return AnchorConfig(model=f"{LOCAL_DIR_PREFIX}{target}", seed=seed)
    raise ConfigError(f"unknown anchor save format {format!r}; use 'file' or 'local-dir'")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------------
# Base class of the modalities that wrap one of the anchor's towers (vision, text, video)
# ------------------------------------------------------------------------------------------------------
class AnchorTowerModality(Modality):
    """A frozen modality computed by the shared anchor (``trainable = False``).

    The anchor is deliberately *not* a registered submodule: one anchor is shared by several modalities
    (and can be the 4 GB ViT-H), so it is kept out of ``parameters()`` (an optimizer can never receive it)
    and out of ``state_dict()`` (saving a modality stores only its config, which names the anchor's
    source; :func:`load_anchor` rebuilds it exactly). ``.to()``/``.half()`` still move it, which moves it for
    every modality sharing it. Subclasses give their ``Config`` an ``anchor: AnchorConfig`` field.
    """

    trainable: ClassVar[bool] = False

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__(config, **options)
        anchor_config = getattr(self.config, "anchor", None)
        if not isinstance(anchor_config, AnchorConfig):
            raise ConfigError(f"{type(self).__name__}.Config needs an 'anchor' field of type AnchorConfig")
        object.__setattr__(self, "_anchor", load_anchor(anchor_config))

    @property
    def anchor(self) -> FrozenAnchor:
        """The shared frozen anchor this modality runs on."""
        return self.__dict__["_anchor"]

    @property
    def embed_dim(self) -> int:
        return self.anchor.embed_dim

    def input_device_dtype(self) -> tuple[torch.device, torch.dtype]:
        return self.anchor.device, self.anchor.dtype

    def _apply(self, fn: Any, recurse: bool = True) -> AnchorTowerModality:
        super()._apply(fn, recurse)
        self.anchor._apply(fn, recurse)
        return self

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, anchor={self.anchor.extra_repr()}"


__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "AnchorConfig",
    "AnchorTowerModality",
    "FrozenAnchor",
    "clear_anchor_cache",
    "freeze",
    "hub_offline",
    "load_anchor",
    "save_anchor",
    "tiny_anchor_config",
]
