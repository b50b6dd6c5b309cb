"""Saving and loading modalities: a directory with ``bindcore.json`` (modality name, validated config,
weights licence) and ``model.safetensors``. Written atomically (temporary directory, then rename)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from bindcore.errors import ConfigError

CONFIG_FILE = "bindcore.json"
WEIGHTS_FILE = "model.safetensors"
NON_COMMERCIAL_LICENSES = ("CC-BY-NC-4.0", "CC-BY-NC-SA-4.0")
_warned_licenses: set[str] = set()


def save_modality(modality: Any, path: str | os.PathLike[str], *, license: str | None = None,
                  source: str | None = None, overwrite: bool = False) -> Path:
    """Write ``modality`` to directory ``path``; refuses to replace an existing one unless ``overwrite``."""
    from safetensors.torch import save_file

    import bindcore

    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True or choose another path")
    license = license or getattr(modality, "weights_license", None)
    meta = {
        "format": "bindcore-modality/1",
        "modality": modality.name,
        "config": modality.config.model_dump(mode="json"),
        "bindcore_version": bindcore.__version__,
        "license": license,
        "source": source or getattr(modality, "weights_source", None),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        state = {k: v.detach().contiguous().cpu() for k, v in modality.state_dict().items()}
        save_file(state, str(staging / WEIGHTS_FILE))
        (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``bindcore.json`` of a saved modality directory."""
    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{path} is not a saved bindcore modality: {CONFIG_FILE} is missing "
                          f"(write one with Modality.save or `bindcore convert`)")
    return json.loads(config_path.read_text())


def warn_if_non_commercial(meta: dict[str, Any], where: str) -> None:
    """Warn once per licence that weights are for non-commercial use only."""
    license = meta.get("license")
    if license in NON_COMMERCIAL_LICENSES and license not in _warned_licenses:
        _warned_licenses.add(license)
        warnings.warn(f"{where}: these weights are licensed {license} (non-commercial use only)",
                      UserWarning, stacklevel=3)


def load_modality(path: str | os.PathLike[str], **config_overrides: Any) -> Any:
    """Rebuild a modality saved with :func:`save_modality` (strict weight loading), in eval mode: ready to embed,
    with stochastic depth and dropout off (a trainer switches to train mode itself)."""
    from safetensors.torch import load_file

    from bindcore.plugins import modality_class

    meta = read_meta(path)
    cls = modality_class(meta["modality"])
    module = cls(**{**meta["config"], **config_overrides})
    module.load_state_dict(load_file(str(Path(path) / WEIGHTS_FILE)), strict=True)
    module.weights_license = meta.get("license")
    module.weights_source = meta.get("source")
    warn_if_non_commercial(meta, str(path))
    return module.eval()
