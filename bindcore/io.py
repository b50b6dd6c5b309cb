"""Saving and loading modalities: a directory with ``bindcore.json`` (modality name, validated config,
weights licence) and ``model.safetensors``. Written atomically (:func:`atomic_directory`: a temporary sibling
directory, then a rename), with the permissions the user's umask gives any other file."""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bindcore.errors import ConfigError

CONFIG_FILE = "bindcore.json"
WEIGHTS_FILE = "model.safetensors"
NON_COMMERCIAL_LICENSES = ("CC-BY-NC-4.0", "CC-BY-NC-SA-4.0")
_warned_licenses: set[str] = set()


def _sibling(target: Path, role: str) -> Path:
    """A fresh hidden directory next to ``target`` (same filesystem, so renames are atomic), made by plain
    ``os.mkdir``: unlike ``tempfile.mkdtemp`` (always 0700) it gets the mode the umask gives any directory."""
    while True:
        candidate = target.with_name(f".{target.name}.{role}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


def _occupied(path: Path) -> bool:
    return path.exists() or path.is_symlink()


@contextmanager
def atomic_directory(target: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory next to ``target``; when the block succeeds, rename it to ``target``.

    If the block raises (or is interrupted), the staging directory is removed and ``target`` is left exactly as it
    was. The staging directory follows the umask, and so does everything written into it with ``open`` (0755/0644
    under umask 022). An existing ``target`` raises ``FileExistsError`` unless ``overwrite``, in which case it is
    replaced only once the new directory is complete. A ``target`` that is a symbolic link keeps pointing at the
    new directory (the directory it points to is replaced, next to where it lives).
    """
    target = Path(os.path.realpath(target)) if Path(target).is_symlink() else Path(target)
    if _occupied(target) and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True or choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "tmp")
    try:
        yield staging
        if not _occupied(target):
            os.rename(staging, target)
        elif not overwrite:  # appeared while we were writing
            raise FileExistsError(f"{target} appeared while it was being written; nothing was replaced")
        else:
            # Directories cannot be renamed over non-empty ones: move the old one aside, then delete it. If
            # putting the old one back fails too, it stays in the ``.old-`` sibling rather than being deleted.
            previous = _sibling(target, "old")
            os.rename(target, previous / target.name)
            try:
                os.rename(staging, target)
            except BaseException:
                os.rename(previous / target.name, target)
                previous.rmdir()
                raise
            shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_modality(modality: Any, path: str | os.PathLike[str], *, license: str | None = None,
                  source: str | None = None, overwrite: bool = False) -> Path:
    """Write ``modality`` to directory ``path``; refuses to replace an existing one unless ``overwrite``."""
    import bindcore
    from bindcore.safetensors_io import write_safetensors

    target = Path(path)
    if _occupied(target) and not overwrite:
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
    with atomic_directory(target, overwrite=overwrite) as staging:
        # Not safetensors' save_file: since 0.8 it writes through a 0600 temporary file whatever the umask.
        write_safetensors(staging / WEIGHTS_FILE, modality.state_dict())
        (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
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
