"""Writing an anchor's weights: one safetensors file, or an open_clip ``local-dir:`` folder."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from torch import nn

from bindcore.anchor.config import LOCAL_DIR_CONFIG, LOCAL_DIR_PREFIX, LOCAL_DIR_WEIGHTS, AnchorConfig
from bindcore.anchor.frozen import FrozenAnchor
from bindcore.errors import ConfigError


def save_anchor(anchor: FrozenAnchor | nn.Module, path: str | os.PathLike[str], *,
                format: Literal["file", "local-dir"] = "file", arch: Mapping[str, Any] | None = None,
                seed: int = 0, extra: Mapping[str, Any] | None = None) -> AnchorConfig:
    """Write the anchor's weights and return the :class:`AnchorConfig` that loads them back.

    ``format="file"``: one safetensors file at ``path`` (config ``arch=..., checkpoint=path``);
    ``format="local-dir"``: an open_clip folder with ``open_clip_config.json`` + ``open_clip_model.safetensors``
    (config ``model="local-dir:path"``, replacing an existing folder whole); ``extra`` goes into the folder config's
    ``bindcore`` entry (licence, source, how it was made). ``arch`` is needed when the anchor does not know its own
    config. Nothing is ever half-written: the file, or the whole folder, is written under a temporary name and
    renamed.
    """
    from open_clip import get_model_preprocess_cfg

    from bindcore.safetensors_io import write_safetensors

    model = anchor.model if isinstance(anchor, FrozenAnchor) else anchor
    arch = arch if arch is not None else getattr(anchor, "arch", None)
    if arch is None:
        raise ConfigError("cannot save an anchor whose architecture is unknown; pass arch=<open_clip model config>")
    state = {k: v.detach() for k, v in model.state_dict().items()}
    target = Path(path)
    if format == "file":
        from bindcore.io import atomic_file

        with atomic_file(target) as handle:
            write_safetensors(handle, state)
        return AnchorConfig(arch=dict(arch), checkpoint=str(target), seed=seed)
    if format == "local-dir":
        from bindcore.io import atomic_directory

        preprocess = {k: v for k, v in dict(get_model_preprocess_cfg(model)).items()
                      if k in ("size", "mode", "mean", "std", "interpolation", "resize_mode", "fill_color")}
        content: dict[str, Any] = {"model_cfg": dict(arch), "preprocess_cfg": _jsonable(preprocess)}
        if extra:
            content["bindcore"] = _jsonable(dict(extra))
        # The whole folder is staged and renamed: a reader never sees new weights beside an old config.
        with atomic_directory(target, overwrite=True) as staging:
            write_safetensors(staging / LOCAL_DIR_WEIGHTS, state)
            (staging / LOCAL_DIR_CONFIG).write_text(json.dumps(content, indent=2) + "\n")
        return AnchorConfig(model=f"{LOCAL_DIR_PREFIX}{target}", seed=seed)
    raise ConfigError(f"unknown anchor save format {format!r}; use 'file' or 'local-dir'")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


__all__ = ["save_anchor"]
