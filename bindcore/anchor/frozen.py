"""The frozen anchor: an OpenCLIP image/text model that every other modality is bound to.

ImageBind keeps the OpenCLIP ViT-H image and text towers frozen and trains the other encoders against
them. :class:`FrozenAnchor` wraps an ``open_clip`` model so that it *cannot* train: no parameter requires
grad, it stays in eval mode whatever ``.train()`` is called with, and every forward runs under
``torch.no_grad()`` (not ``inference_mode``: its outputs are used as constants inside differentiable
losses, which inference tensors do not allow). Training, evaluation, the embedding cache and inference all
use this one class.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bindcore.anchor.config import CLIP_MEAN, CLIP_STD
from bindcore.anchor.sdpa import (
    OPEN_CLIP_PATH,
    SDPA_PATH,
    has_split_text,
    has_split_vision,
    image_fast_path_blocker,
    sdpa_blocks,
    text_fast_path_blocker,
)
from bindcore.errors import ConfigError

if TYPE_CHECKING:
    from bindcore.anchor.config import AnchorConfig


class FrozenAnchor(nn.Module):
    """An open_clip model that cannot train. Build with :func:`load_anchor` or :func:`freeze`.

    ``encode_image``/``encode_text`` give L2-normalised embeddings by default. For modalities that expose
    the two-step ``encode``/``project`` contract, ``image_features``/``text_features`` return the pooled
    trunk features *before* the tower's projection and ``project_image``/``project_text`` apply it (for
    the standard open_clip ViT and CLIP text transformer; other towers pool and project in one step, so
    their "features" are already projected and ``project_*`` only normalises).

    Standard open_clip towers run through an exact SDPA forward of their own weights (:mod:`bindcore.anchor.sdpa`:
    packed in-projection, flash attention, ``is_causal`` text cut after the batch's last EOT, class-token-only last
    image block); anything else runs open_clip's own forward. ``last_path``/``fallback_reason`` say which ran;
    ``use_fast_path = False`` forces open_clip's.
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
        if has_split_vision(visual):
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
            x = sdpa_blocks(visual.transformer, tokens, causal=False, first_token_only=visual.pool_type == "tok")
        else:
            x = visual.transformer(tokens)
        pooled, _ = visual._pool(x)
        return pooled

    @torch.no_grad()
    def project_image(self, features: Tensor, normalize: bool = True) -> Tensor:
        visual = self.model.visual
        if has_split_vision(visual) and visual.proj is not None:
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
        if not has_split_text(model):
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
        x = sdpa_blocks(model.transformer, x, causal=True)
        # ln_final is per token, so pooling first is exact and normalises B rows instead of B × length.
        return model.ln_final(x[torch.arange(x.shape[0], device=x.device), pool_at])

    def _record_path(self, tower: str, blocker: str | None) -> None:
        self.last_path[tower] = SDPA_PATH if blocker is None else OPEN_CLIP_PATH
        self.fallback_reason[tower] = blocker

    @torch.no_grad()
    def project_text(self, features: Tensor, normalize: bool = True) -> Tensor:
        model = self.model
        if has_split_text(model) and model.text_projection is not None:
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


    def fingerprint(self) -> str:
        """Identifies architecture and weights (samples of every tensor), for cache staleness checks."""
        description = self.arch if self.arch is not None else (self.config.model_dump(mode="json")
                                                               if self.config is not None else {})
        digest = hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode())
        for key, value in self.model.state_dict().items():
            flat = value.detach().reshape(-1)[:4096].float().cpu().numpy()
            digest.update(key.encode())
            digest.update(str(tuple(value.shape)).encode())
            digest.update(flat.tobytes())
        return digest.hexdigest()[:20]


def freeze(model: nn.Module, *, arch: Mapping[str, Any] | None = None,
           config: AnchorConfig | None = None) -> FrozenAnchor:
    """Freeze an already-built open_clip model in place (e.g. a tiny anchor the demo just pretrained).

    Pass ``arch`` (its open_clip model config) so the anchor can later be written with
    :func:`bindcore.anchor.save_anchor`.
    """
    if isinstance(model, FrozenAnchor):
        return model
    return FrozenAnchor(model, arch=arch, config=config)


__all__ = ["FrozenAnchor", "freeze"]
