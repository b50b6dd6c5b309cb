"""The frozen anchor for training: a named open_clip model with weights, or a tiny open_clip model
pretrained here on toy image–caption pairs (standing in for OpenCLIP's web pretraining)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bindcore.errors import AnchorUnavailableError
from bindcore.train.recipe import AnchorSpec, TinyAnchor

DEFAULT_TEMPLATES = (
    "a photo of a {}.", "a bad photo of a {}.", "a photo of the {}.", "a close-up photo of a {}.",
    "a bright photo of a {}.", "a dark photo of the {}.", "a photo of a small {}.", "a photo of a big {}.",
    "a cropped photo of the {}.", "a blurry photo of a {}.", "a rendering of a {}.", "itap of a {}.",
    "a good photo of the {}.", "a low resolution photo of the {}.", "art of the {}.", "a sketch of a {}.",
    "a drawing of a {}.", "a photo of one {}.", "a sculpture of a {}.", "a toy {}.",
)  # a subset of CLIP's ImageNet prompt templates


WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


class FrozenOpenClip(nn.Module):
    """An open_clip model in eval mode with gradients off: unit-norm image and text embeddings."""

    def __init__(self, model: nn.Module, description: dict[str, Any]):
        super().__init__()
        self.model = model.eval()
        self.model.requires_grad_(False)
        self.description = description

    def train(self, mode: bool = True) -> FrozenOpenClip:  # stays in eval mode: the anchor never trains
        return super().train(False)

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[-1]) if hasattr(self.model, "text_projection") else \
            int(self.description.get("embed_dim", 0))

    @torch.no_grad()
    def encode_image(self, images: Tensor) -> Tensor:
        return F.normalize(self.model.encode_image(images).float(), dim=-1)

    @torch.no_grad()
    def encode_text(self, tokens: Tensor) -> Tensor:
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def fingerprint(self) -> str:
        """Identifies architecture and weights (samples of every tensor), for cache staleness checks."""
        digest = hashlib.sha256(json.dumps(self.description, sort_keys=True, default=str).encode())
        for key, value in self.model.state_dict().items():
            flat = value.detach().reshape(-1)[:4096].float().cpu().numpy()
            digest.update(key.encode())
            digest.update(str(tuple(value.shape)).encode())
            digest.update(flat.tobytes())
        return digest.hexdigest()[:20]


def tiny_arch(arch: TinyAnchor) -> dict[str, Any]:
    """The open_clip model config (``CLIP(**config)`` keyword arguments) of a tiny anchor."""
    return {
        "embed_dim": arch.embed_dim,
        "vision_cfg": {"image_size": arch.image_size, "layers": arch.vision_layers, "width": arch.vision_width,
                       "head_width": arch.vision_width // arch.vision_heads, "patch_size": arch.patch_size},
        "text_cfg": {"context_length": arch.context_length, "vocab_size": arch.vocab_size,
                     "width": arch.text_width, "heads": arch.text_heads, "layers": arch.text_layers},
    }


def build_tiny_open_clip(arch: TinyAnchor) -> nn.Module:
    """A small ``open_clip.CLIP`` (same code path as ViT-H-14, a fraction of the size)."""
    import open_clip

    return open_clip.CLIP(**tiny_arch(arch))


def load_named_anchor(spec: AnchorSpec, resolve: Any = None) -> FrozenOpenClip:
    """``spec.model`` with ``spec.pretrained`` weights (a tag or a file); clear error when unavailable."""
    pretrained = spec.pretrained
    if pretrained and resolve is not None and (os.sep in pretrained or pretrained.endswith(WEIGHT_SUFFIXES)):
        pretrained = str(resolve(pretrained))
    try:
        from bindcore.anchor import load_anchor
    except ImportError:
        load_anchor = None
    try:
        if load_anchor is not None:
            model = load_anchor({"model": spec.model, "pretrained": pretrained}).model
        else:
            import open_clip

            model = open_clip.create_model(spec.model, pretrained=pretrained)
    except AnchorUnavailableError:
        raise
    except Exception as exc:  # offline hub, unknown tag, missing file
        raise AnchorUnavailableError(
            f"cannot load anchor {spec.model} with weights {pretrained!r}: {type(exc).__name__}: {exc}. "
            f"Put the weights file somewhere local and set anchor.pretrained to its path "
            f"(or allow Hugging Face downloads: unset HF_HUB_OFFLINE)") from None
    return FrozenOpenClip(model, {"model": spec.model, "pretrained": spec.pretrained})


def pretrain_tiny_anchor(spec: AnchorSpec, images: Tensor, captions: list[list[Tensor]], *, seed: int,
                         progress: bool = True) -> nn.Module:
    """CLIP-train a tiny open_clip model on (image, caption) pairs; ``captions[i]`` are token rows of image i."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    model = build_tiny_open_clip(spec.tiny)
    cfg = spec.pretrain
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": other, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))
    rng = np.random.default_rng(seed)
    count = images.shape[0]
    import sys

    bar = tqdm(range(cfg.steps), desc="pretrain anchor", disable=not progress, dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 15)
    model.train()
    for step in bar:
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        if step >= cfg.warmup_steps:
            progress_frac = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
            lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * progress_frac))
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = rng.choice(count, size=min(cfg.batch_size, count), replace=False)
        tokens = torch.stack([captions[i][rng.integers(len(captions[i]))] for i in batch])
        image_features = F.normalize(model.encode_image(images[torch.as_tensor(batch)]), dim=-1)
        text_features = F.normalize(model.encode_text(tokens), dim=-1)
        logits = model.logit_scale.exp() * image_features @ text_features.T
        target = torch.arange(len(batch))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


def save_anchor_state(model: nn.Module, path: Path, meta: dict[str, Any]) -> None:
    """Atomic write of a pretrained tiny anchor (state dict + what built it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save({"meta": meta, "state_dict": model.state_dict()}, temporary)
    os.replace(temporary, path)


def load_anchor_state(path: Path, spec: AnchorSpec, meta: dict[str, Any]) -> nn.Module | None:
    """The saved tiny anchor if it was built from the same settings, else None."""
    if not path.is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved.get("meta") != meta:
        return None
    model = build_tiny_open_clip(spec.tiny)
    model.load_state_dict(saved["state_dict"])
    return model.eval()
