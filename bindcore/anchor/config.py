"""Where the frozen anchor comes from: :class:`AnchorConfig` (the one anchor schema, used by plugins, recipes and
saved modalities) and :func:`tiny_anchor_config` (the one builder of small open_clip architectures)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from bindcore.errors import ConfigError

#: ImageBind's anchor (OpenCLIP ViT-H/14 trained on LAION-2B).
DEFAULT_MODEL = "ViT-H-14"
DEFAULT_PRETRAINED = "laion2b_s32b_b79k"
LOCAL_DIR_PREFIX = "local-dir:"
HF_HUB_PREFIX = "hf-hub:"
#: File names of an open_clip ``local-dir:`` folder (what open_clip looks for).
LOCAL_DIR_CONFIG = "open_clip_config.json"
LOCAL_DIR_WEIGHTS = "open_clip_model.safetensors"
#: OpenAI CLIP normalisation, used by ImageBind and by open_clip's defaults.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: Suffixes that mark a ``pretrained``/``checkpoint`` value as a weights file rather than a tag.
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def looks_like_weights_file(text: str) -> bool:
    """True when ``text`` is meant as a file path (a separator or a weights suffix), not an open_clip tag."""
    return "/" in text or "\\" in text or text.endswith(WEIGHT_SUFFIXES)


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
    Pass the result as ``AnchorConfig(arch=...)``, or the keyword arguments as ``AnchorConfig(tiny={...})``.
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


def _tiny_arch(options: Any) -> dict[str, Any]:
    import inspect

    if not isinstance(options, Mapping):
        raise ValueError(f"'tiny' takes the keyword arguments of tiny_anchor_config, got {type(options).__name__}")
    valid = list(inspect.signature(tiny_anchor_config).parameters)
    unknown = [key for key in options if key not in valid]
    if unknown:
        raise ValueError(f"tiny: unknown key {unknown[0]!r} (valid keys: {', '.join(valid)})")
    try:
        return tiny_anchor_config(**options)
    except (ConfigError, TypeError) as exc:
        raise ValueError(f"tiny: {exc}") from None


class AnchorConfig(BaseModel):
    """Where the frozen anchor comes from. Exactly one source:

    * ``model`` (+ ``pretrained``): an open_clip model name with a pretrained tag or a local weights file
      (``pretrained=None`` gives a seeded random init); ``model="local-dir:/folder"`` reads an open_clip folder
      (``pretrained`` must then be unset).
    * ``arch`` (+ ``checkpoint``): a custom open_clip model config dict, optionally with a weights file;
      ``tiny: {...}`` is shorthand for ``arch: tiny_anchor_config(...)``.
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
            if "tiny" in data:
                if data.get("arch") is not None:
                    raise ValueError("give either 'tiny' or 'arch', not both")
                data["arch"] = _tiny_arch(data.pop("tiny"))
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

    # -- what can be known without building the model --------------------------------------------------
    @property
    def local_dir(self) -> Path | None:
        """The folder of a ``local-dir:`` anchor, else None."""
        if self.model and self.model.startswith(LOCAL_DIR_PREFIX):
            return Path(self.model[len(LOCAL_DIR_PREFIX):])
        return None

    @property
    def random_init(self) -> bool:
        """True when no weights are read: the anchor is a seeded random init (e.g. a tiny anchor to pretrain)."""
        if self.arch is not None:
            return self.checkpoint is None
        return self.local_dir is None and not self.pretrained and not (self.model or "").startswith(HF_HUB_PREFIX)

    def architecture(self) -> dict[str, Any] | None:
        """The open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``) read without building the model
        or touching weights: from ``arch``, a ``local-dir:`` folder's config file, or open_clip's named configs.
        None when it cannot be known that way (e.g. an ``hf-hub:`` model or a missing folder)."""
        if self.arch is not None:
            return dict(self.arch)
        folder = self.local_dir
        if folder is not None:
            try:
                return dict(json.loads((folder / LOCAL_DIR_CONFIG).read_text())["model_cfg"])
            except (OSError, ValueError, KeyError, TypeError):
                return None
        if self.model and not self.model.startswith(HF_HUB_PREFIX):
            from open_clip import get_model_config

            found = get_model_config(self.model.replace("/", "-"))
            return dict(found) if found else None
        return None

    def image_size(self) -> int | None:
        """Side of the square images the image tower takes, when :meth:`architecture` tells it."""
        size = ((self.architecture() or {}).get("vision_cfg") or {}).get("image_size")
        if isinstance(size, (list, tuple)):
            return int(size[0]) if len(set(size)) == 1 else None
        return int(size) if size else None

    def context_length(self) -> int | None:
        """Token ids the text tower takes, when :meth:`architecture` tells it."""
        length = ((self.architecture() or {}).get("text_cfg") or {}).get("context_length")
        return int(length) if length else None

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


__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "LOCAL_DIR_CONFIG",
    "LOCAL_DIR_PREFIX",
    "LOCAL_DIR_WEIGHTS",
    "WEIGHT_SUFFIXES",
    "AnchorConfig",
    "looks_like_weights_file",
    "tiny_anchor_config",
]
