"""bindcore: bind any number of modalities into one embedding space around a frozen anchor."""

from __future__ import annotations

import importlib
from typing import Any

from bindcore.config import ModalityConfig
from bindcore.errors import (
    AnchorUnavailableError,
    BindcoreError,
    CheckpointError,
    ConfigError,
    DuplicateModalityError,
    InputError,
    NonFiniteError,
    PluginLoadError,
    UnknownModalityError,
)
from bindcore.hookspecs import hookimpl
from bindcore.plugins import get_registry, list_modalities, modality, modality_class

__version__ = "0.1.0"

# Heavier parts are imported on first use so ``import bindcore`` stays light.
# Everything a plugin author needs is here, whichever module holds it.
_LAZY = {
    "Modality": "bindcore.modality_base",
    "PatchModality": "bindcore.patch_modality",
    "PatchModalityConfig": "bindcore.patch_modality",
    "PatchEncoder": "bindcore.nn",
    "ProjectionHead": "bindcore.nn",
    "Transformer": "bindcore.nn",
    "fold_clips": "bindcore.nn",
    "mean_of_clips": "bindcore.nn",
    "patch_grid": "bindcore.nn",
    "Scene": "bindcore.toyworld",
    "CONCEPTS": "bindcore.toyworld",
    "concept_code": "bindcore.toyworld",
    "info_nce": "bindcore.loss",
    "InfoNCE": "bindcore.loss",
    "FrozenAnchor": "bindcore.anchor",
    "AnchorConfig": "bindcore.anchor",
    "AnchorTowerModality": "bindcore.anchor",
    "load_anchor": "bindcore.anchor",
    "tiny_anchor_config": "bindcore.anchor",
    "BindModel": "bindcore.inference",
    "load_modality": "bindcore.io",
    "save_modality": "bindcore.io",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bindcore' has no attribute {name!r}")


__all__ = [
    "AnchorUnavailableError",
    "BindcoreError",
    "CheckpointError",
    "ConfigError",
    "DuplicateModalityError",
    "InputError",
    "Modality",
    "ModalityConfig",
    "NonFiniteError",
    "PluginLoadError",
    "UnknownModalityError",
    "get_registry",
    "hookimpl",
    "list_modalities",
    "modality",
    "modality_class",
    *_LAZY,
]
