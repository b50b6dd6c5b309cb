"""Saving and loading modalities: a directory with ``bindcore.json`` (modality name, validated config,
weights licence) and ``model.safetensors``. Written atomically (:func:`atomic_directory`: a temporary sibling
directory, then a rename), with the permissions the user's umask gives any other file. :func:`atomic_file` does
the same for one file."""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

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


def _temporary_sibling(target: Path) -> Path:
    """A hidden file name next to ``target`` that no other process or call uses: ``.NAME.tmp-PID-UUID8``."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_file(target: str | os.PathLike[str], mode: str = "wb", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Yield a handle on a hidden temporary file next to ``target``; when the block succeeds, fsync it and
    ``os.replace`` it onto ``target``.

    If the block raises (or is interrupted), the temporary is removed and ``target`` is left exactly as it was.
    Parent directories are created. Opened with plain ``open``, so the file gets the mode the umask gives any
    file (0644 under umask 022). ``mode`` is a write mode (``"wb"``, ``"w"``); ``open_kwargs`` go to ``open``.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_file writes a whole new file: mode must contain 'w', got {mode!r}")
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(target)
    try:
        with open(temporary, mode.replace("w", "x"), **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_modality(modality: Any, path: str | os.PathLike[str], *, license: str | None = None,
                  source: str | None = None, overwrite: bool = False) -> Path:
    """Write ``modality`` to directory ``path``; refuses to replace an existing one unless ``overwrite``."""
    import bindcore
    from bindcore.nn.lora import has_lora, split_state, write_adapter
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
    adapted = has_lora(modality)
    with atomic_directory(target, overwrite=overwrite) as staging:
        # Not safetensors' save_file: since 0.8 it writes through a 0600 temporary file whatever the umask.
        # LoRA adapters go beside the untouched base weights (bindcore.nn.lora), in the same atomic directory.
        write_safetensors(staging / WEIGHTS_FILE, split_state(modality)[0] if adapted else modality.state_dict())
        if adapted:
            write_adapter(modality, staging)
        (staging / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return target


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``bindcore.json`` of a saved modality directory."""
    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{path} is not a saved bindcore modality: {CONFIG_FILE} is missing "
                          f"(write one with Modality.save or `bindcore convert`)")
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{config_path} is damaged ({error}); save the modality again (Modality.save or "
                          f"`bindcore convert`)") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("modality"), str) or \
            not isinstance(meta.get("config"), dict):
        raise ConfigError(f"{config_path} lacks the 'modality' name or the 'config' mapping of a saved bindcore "
                          f"modality; save the modality again (Modality.save or `bindcore convert`)")
    return meta


def warn_if_non_commercial(meta: dict[str, Any], where: str) -> None:
    """Warn once per licence that weights are for non-commercial use only."""
    license = meta.get("license")
    if license in NON_COMMERCIAL_LICENSES and license not in _warned_licenses:
        _warned_licenses.add(license)
        warnings.warn(f"{where}: these weights are licensed {license} (non-commercial use only)",
                      UserWarning, stacklevel=3)


def _attach_saved_adapter(module: Any, path: Path, again: str) -> None:
    """Put the LoRA adapters saved in ``path`` (``adapter.safetensors``, from a ``train.lora`` run) on ``module``."""
    from safetensors import SafetensorError

    from bindcore.nn.lora import attach_adapter, read_adapter_config

    try:
        config = read_adapter_config(path)
        if config is not None:
            attach_adapter(module, path, config)
    except (ValueError, KeyError, SafetensorError, OSError) as error:
        raise ConfigError(f"{path}: its LoRA adapter cannot be loaded ({error}); {again}, or write plain weights "
                          f"with `bindcore export RUN --merge OUT`") from None


def load_modality(path: str | os.PathLike[str], **config_overrides: Any) -> Any:
    """Rebuild a modality saved with :func:`save_modality` (strict weight loading), in eval mode: ready to embed,
    with stochastic depth and dropout off (a trainer switches to train mode itself). A directory with LoRA adapters
    (``adapter.safetensors``) loads as base plus adapters."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from bindcore.plugins import modality_class

    meta = read_meta(path)
    cls = modality_class(meta["modality"])
    module = cls(**{**meta["config"], **config_overrides})
    weights_path = Path(path) / WEIGHTS_FILE
    again = "save the modality again (Modality.save or `bindcore convert`)"
    if not weights_path.is_file():
        raise ConfigError(f"{weights_path} is missing: {path} holds a {CONFIG_FILE} but no weights; {again}")
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as error:
        raise ConfigError(f"{weights_path} is damaged or not a safetensors file ({type(error).__name__}: "
                          f"{error}); {again}") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ConfigError(f"{weights_path} does not match the {meta['modality']!r} config in {CONFIG_FILE} "
                          f"({' '.join(str(error).split())}); {again}, or load it with the bindcore/plugin "
                          f"version that wrote it") from None
    _attach_saved_adapter(module, Path(path), again)
    module.weights_license = meta.get("license")
    module.weights_source = meta.get("source")
    warn_if_non_commercial(meta, str(path))
    return module.eval()
