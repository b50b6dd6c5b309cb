"""bindcore: bind any number of modalities into one embedding space around a frozen anchor."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bindcore.errors import (
    AnchorUnavailableError,
    BindcoreError,
    CheckpointError,
    ConfigError,
    DuplicateModalityError,
    InputError,
    NonFiniteError,
    PluginLoadError,
    RunDirectoryError,
    UnknownModalityError,
)
from bindcore.hookspecs import hookimpl

__version__ = "0.1.0"

# Everything else is imported on first use, so ``import bindcore`` (which every plugin and every ``bindcore``
# command does) costs milliseconds: no pydantic (config), no plugin loading machinery, no torch. Everything a
# plugin author needs is here, whichever module holds it.
_LAZY = {
    "ModalityConfig": "bindcore.config",
    "get_registry": "bindcore.plugins",
    "list_modalities": "bindcore.plugins",
    "modality": "bindcore.plugins",
    "modality_class": "bindcore.plugins",
    "Modality": "bindcore.modality_base",
    "PatchModality": "bindcore.patch_modality",
    "PatchModalityConfig": "bindcore.patch_modality",
    "SignalModality": "bindcore.signal_modality",
    "SignalModalityConfig": "bindcore.signal_modality",
    "PatchEncoder": "bindcore.nn",
    "ProjectionHead": "bindcore.nn",
    "Transformer": "bindcore.nn",
    "fold_clips": "bindcore.nn",
    "mean_of_clips": "bindcore.nn",
    "patch_grid": "bindcore.nn",
    "Scene": "bindcore.toyworld",
    "generate_scenes": "bindcore.toyworld",
    "CONCEPTS": "bindcore.toyworld",
    "concept_code": "bindcore.toyworld",
    "info_nce": "bindcore.loss",
    "InfoNCE": "bindcore.loss",
    "FrozenAnchor": "bindcore.anchor",
    "AnchorConfig": "bindcore.anchor",
    "AnchorTowerModality": "bindcore.anchor",
    "load_anchor": "bindcore.anchor",
    "tiny_anchor_config": "bindcore.anchor",
    "CLIP_MEAN": "bindcore.anchor",
    "CLIP_STD": "bindcore.anchor",
    "read_npy": "bindcore.imageio",
    "read_gray_image": "bindcore.imageio",
    "as_item_list": "bindcore.imageio",
    "is_path": "bindcore.imageio",
    "require_finite": "bindcore.imageio",
    "check_pixel_count": "bindcore.imageio",
    "describe_item": "bindcore.errors",
    "BindModel": "bindcore.inference",
    "load_modality": "bindcore.io",
    "save_modality": "bindcore.io",
}

if TYPE_CHECKING:
    from bindcore.anchor import AnchorConfig, FrozenAnchor, load_anchor
    from bindcore.config import ModalityConfig
    from bindcore.inference import BindModel
    from bindcore.io import load_modality
    from bindcore.loss import InfoNCE, info_nce
    from bindcore.modality_base import Modality
    from bindcore.plugins import get_registry, list_modalities, modality, modality_class


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module 'bindcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [  # noqa: RUF022 (grouped: errors and hooks, then the lazy names)
    "AnchorUnavailableError",
    "BindcoreError",
    "CheckpointError",
    "ConfigError",
    "DuplicateModalityError",
    "InputError",
    "NonFiniteError",
    "PluginLoadError",
    "RunDirectoryError",
    "UnknownModalityError",
    "hookimpl",
    "ModalityConfig",
    "get_registry",
    "list_modalities",
    "modality",
    "modality_class",
    "Modality",
    "PatchModality",
    "PatchModalityConfig",
    "SignalModality",
    "SignalModalityConfig",
    "PatchEncoder",
    "ProjectionHead",
    "Transformer",
    "fold_clips",
    "mean_of_clips",
    "patch_grid",
    "Scene",
    "generate_scenes",
    "CONCEPTS",
    "concept_code",
    "info_nce",
    "InfoNCE",
    "FrozenAnchor",
    "AnchorConfig",
    "AnchorTowerModality",
    "load_anchor",
    "tiny_anchor_config",
    "CLIP_MEAN",
    "CLIP_STD",
    "read_npy",
    "read_gray_image",
    "as_item_list",
    "is_path",
    "require_finite",
    "check_pixel_count",
    "describe_item",
    "BindModel",
    "load_modality",
    "save_modality",
]
