"""Building the frozen anchor from an :class:`AnchorConfig`, and sharing it.

Weights come from what open_clip and huggingface_hub already do: a pretrained tag is resolved by
``open_clip.create_model`` (which reads the Hugging Face cache, and fails at once when ``HF_HUB_OFFLINE=1`` and
the weights are not cached); a file path or a ``local-dir:`` folder is read directly. Every failure to obtain
weights becomes an :class:`AnchorUnavailableError` that says how to pass a local file instead.

:func:`load_anchor` caches anchors per config, so the vision and text modalities built from one config share one
model in memory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from bindcore.anchor.config import (
    DEFAULT_MODEL,
    HF_HUB_PREFIX,
    LOCAL_DIR_CONFIG,
    LOCAL_DIR_WEIGHTS,
    AnchorConfig,
    looks_like_weights_file,
)
from bindcore.anchor.frozen import FrozenAnchor
from bindcore.errors import AnchorUnavailableError, ConfigError

_cache: weakref.WeakValueDictionary[str, FrozenAnchor] = weakref.WeakValueDictionary()
_cache_lock = threading.Lock()


def load_anchor(config: AnchorConfig | Mapping[str, Any] | None = None, **options: Any) -> FrozenAnchor:
    """Build (or reuse) the frozen anchor described by ``config``.

    Anchors are cached per config (and the identity of the files they read), so every modality built from one
    config shares one model; the cache holds them weakly, so an unused anchor is freed.
    """
    config = as_anchor_config(config, options)
    key = _cache_key(config)
    with _cache_lock:
        anchor = _cache.get(key)
        if anchor is None:
            model, arch = build_open_clip(config)
            anchor = FrozenAnchor(model, arch=arch, config=config)
            _cache[key] = anchor
        return anchor


def clear_anchor_cache() -> None:
    """Forget cached anchors (the next :func:`load_anchor` rebuilds)."""
    with _cache_lock:
        _cache.clear()


def as_anchor_config(config: AnchorConfig | Mapping[str, Any] | None, options: Mapping[str, Any] | None = None
                     ) -> AnchorConfig:
    """``config`` as a validated :class:`AnchorConfig` (a mapping and keyword options are merged)."""
    from bindcore.config import validate_config

    if isinstance(config, AnchorConfig):
        if options:
            raise TypeError("pass either an AnchorConfig or keyword options, not both")
        return config
    return validate_config(AnchorConfig, {**(config or {}), **(options or {})}, where="anchor")


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
    folder = config.local_dir
    if folder is not None and folder.is_dir():
        parts += [_file_identity(p) for p in sorted(folder.iterdir()) if p.is_file()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def build_open_clip(config: AnchorConfig) -> tuple[nn.Module, dict[str, Any] | None]:
    """A fresh, *trainable* open_clip model for ``config`` and its model config (None when unknown).

    :func:`load_anchor` freezes the result; pretraining a tiny anchor trains it first. Random inits (no weights)
    are seeded with ``config.seed``, so a tiny random anchor is the same in every process; the caller's global
    RNG is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.arch is not None:
            return _build_custom(config), config.arch
        if config.local_dir is not None:
            return _build_local_dir(config)
        return _build_named(config)


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
        load_checkpoint(model, path, strict=True, weights_only=True)
    except RuntimeError as exc:
        raise ConfigError(f"anchor checkpoint {path} does not match the architecture: {exc}") from exc
    except Exception as exc:  # not a weights file: a pickle of other objects, random bytes, a truncated file
        raise ConfigError(f"anchor checkpoint {path} cannot be read as weights ({type(exc).__name__}: {exc}); "
                          f"pass a .safetensors file or a torch state dict") from exc


def _build_local_dir(config: AnchorConfig) -> tuple[nn.Module, dict[str, Any]]:
    import open_clip

    from bindcore.io import warn_if_non_commercial

    folder = config.local_dir
    assert folder is not None
    config_file = folder / LOCAL_DIR_CONFIG
    if not config_file.is_file():
        raise AnchorUnavailableError(
            f"{config.model}: {config_file} not found; a local-dir: anchor folder needs {LOCAL_DIR_CONFIG} "
            f"(with 'model_cfg') and a weights file such as {LOCAL_DIR_WEIGHTS} "
            f"(write one with bindcore.anchor.save_anchor(anchor, folder, format='local-dir'))")
    try:
        content = json.loads(config_file.read_text())
        arch = dict(content["model_cfg"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{config_file}: not an open_clip folder config ({type(exc).__name__}: {exc})") from None
    try:
        model = open_clip.create_model(config.model, pretrained_image=False, pretrained_text=False,
                                       weights_only=True)
    except Exception as exc:  # a config open_clip rejects, or weights it cannot read (damaged, not safetensors)
        raise ConfigError(f"{config.model}: cannot build the anchor from {folder}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
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
    pretrained = config.pretrained
    if pretrained and not os.path.isfile(pretrained) and not open_clip.get_pretrained_cfg(name, pretrained):
        if looks_like_weights_file(pretrained):
            raise AnchorUnavailableError(f"anchor weights file not found: {pretrained}; pass an existing file as "
                                         f"pretrained=/path/to/weights (.safetensors, .pt, .bin)")
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise ConfigError(f"{pretrained!r} is neither a pretrained tag of open_clip {name} nor an existing file "
                          f"(tags: {', '.join(tags) if tags else 'none'})")
    try:
        model = open_clip.create_model(name, pretrained=pretrained, pretrained_image=False, pretrained_text=False,
                                       cache_dir=config.cache_dir, weights_only=True)
    except Exception as exc:  # a download that failed (offline, not cached), or a file that does not fit
        if pretrained and not os.path.isfile(pretrained):
            raise AnchorUnavailableError(_unavailable_message(name, config, exc)) from exc
        raise ConfigError(f"cannot build anchor {config.describe()}: {type(exc).__name__}: {exc}") from exc
    return model, arch


def hub_offline() -> bool:
    """True when the Hugging Face hub is switched off by the environment (``HF_HUB_OFFLINE``)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _unavailable_message(name: str, config: AnchorConfig, error: Exception) -> str:
    reason = "HF_HUB_OFFLINE is set (offline)" if hub_offline() else f"{type(error).__name__}: {error}"
    return (
        f"cannot obtain the anchor weights for open_clip {name} pretrained {config.pretrained!r}: they are not in "
        f"the local cache and cannot be downloaded ({reason}). Get the weights file on a machine with access to "
        f"the Hugging Face hub, then pass it: AnchorConfig(model={name!r}, "
        f"pretrained='/path/to/open_clip_model.safetensors'), or an open_clip folder (open_clip_config.json + "
        f"weights): AnchorConfig(model='local-dir:/path/to/folder'); for a quick offline test use a tiny random "
        f"anchor: AnchorConfig(tiny={{}})"
    )


__all__ = ["as_anchor_config", "build_open_clip", "clear_anchor_cache", "hub_offline", "load_anchor"]
