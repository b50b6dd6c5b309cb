"""Reading an ImageBind checkpoint safely and splitting it by modality.

The checkpoint is opened with ``torch.load(weights_only=True, mmap=True)``: no arbitrary unpickling,
and tensors stay backed by the file (pages are read on demand and can be dropped by the OS), so a
4.8 GB checkpoint is never held in memory next to the converted copy.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from bindcore.errors import ConfigError

#: The six modalities of ImageBind's released model, in the order its model builds them.
IMAGEBIND_MODALITIES: tuple[str, ...] = ("vision", "text", "audio", "depth", "thermal", "imu")
#: Attention heads per modality in ``imagebind_huge`` (heads cannot be read from tensor shapes).
IMAGEBIND_HUGE_HEADS: dict[str, int] = {"vision": 16, "text": 16, "audio": 12, "depth": 8, "thermal": 12, "imu": 8}
#: Licence of Meta's released ImageBind weights (model card / README).
IMAGEBIND_LICENSE = "CC-BY-NC-4.0"
#: Top-level groups of an ``ImageBindModel`` state dict; every key is ``<group>.<modality>.<rest>``.
IMAGEBIND_GROUPS: tuple[str, ...] = (
    "modality_preprocessors", "modality_trunks", "modality_heads", "modality_postprocessors",
)
_WRAPPER_KEYS = ("state_dict", "model", "module")


def load_checkpoint(path: str | os.PathLike[str]) -> Mapping[str, Tensor]:
    """Open an ImageBind checkpoint (``.pth``/``.pt``) as a flat ``{key: tensor}`` mapping, memory-mapped.

    Refuses anything that needs arbitrary unpickling. Accepts a bare state dict or one wrapped under
    ``state_dict``/``model``/``module``; strips a DistributedDataParallel ``module.`` key prefix.
    """
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"checkpoint {str(source)!r} does not exist (pass the path of imagebind_huge.pth)")
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as error:
        if "mmap" not in str(error):
            raise ConfigError(f"cannot read {source} as a PyTorch checkpoint: {error}") from None
        # Legacy (pre-zipfile) checkpoints cannot be memory-mapped; they load fully, still safely.
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError & co: say why instead of a pickle traceback
        raise ConfigError(f"cannot read {source} safely as a PyTorch state dict (weights_only=True): "
                          f"{type(error).__name__}: {error}") from None
    for key in _WRAPPER_KEYS:
        if isinstance(loaded, Mapping) and key in loaded and isinstance(loaded[key], Mapping):
            loaded = loaded[key]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise ConfigError(f"{source} does not hold a state dict of tensors")
    if loaded and all(k.startswith("module.") for k in loaded):
        loaded = {k[len("module."):]: v for k, v in loaded.items()}
    return loaded


def split_by_modality(state_dict: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """Group entries by modality name (keys keep their full ImageBind prefix). Rejects foreign keys."""
    groups: dict[str, dict[str, Tensor]] = {}
    foreign = []
    for key, value in state_dict.items():
        parts = key.split(".", 2)
        if len(parts) < 3 or parts[0] not in IMAGEBIND_GROUPS:
            foreign.append(key)
            continue
        groups.setdefault(parts[1], {})[key] = value
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError(f"not an ImageBind checkpoint: {len(foreign)} key(s) outside {'/'.join(IMAGEBIND_GROUPS)} "
                          f"(e.g. {shown})")
    if not groups:
        raise ConfigError("the checkpoint is empty")
    return groups


def count_blocks(state_dict: Mapping[str, Tensor], prefix: str) -> int:
    """Number of transformer blocks stored under ``<prefix>.blocks.<i>.``; checks they are numbered 0..n-1."""
    pattern = re.compile(re.escape(prefix) + r"\.blocks\.(\d+)\.")
    indices = {int(m.group(1)) for key in state_dict if (m := pattern.match(key))}
    if indices != set(range(len(indices))):
        raise ConfigError(f"{prefix}: transformer blocks are not numbered 0..n-1 (found {sorted(indices)})")
    return len(indices)


def require(state_dict: Mapping[str, Tensor], key: str, ndim: int | None = None) -> Tensor:
    """``state_dict[key]``, with a clear error when it is missing or has the wrong rank."""
    if key not in state_dict:
        raise ConfigError(f"ImageBind checkpoint is missing {key!r}")
    value = state_dict[key]
    if ndim is not None and value.ndim != ndim:
        raise ConfigError(f"{key}: expected a {ndim}-D tensor, got shape {tuple(value.shape)}")
    return value


def check_head_counts(groups: Mapping[str, Mapping[str, Tensor]], heads: Mapping[str, int]) -> None:
    """Check that ``heads[name]`` divides the width of modality ``name``'s transformer (read from its first
    attention block), so that a wrong ``--heads`` fails before anything is converted or written."""
    for name, count in heads.items():
        weight = groups.get(name, {}).get(f"modality_trunks.{name}.blocks.0.attn.in_proj_weight")
        if weight is None or weight.ndim != 2:
            continue  # converting the modality reports what is missing
        width = weight.shape[1]
        if width % count:
            raise ConfigError(f"--heads {name}={count}: the {name} transformer's width {width} is not divisible "
                              f"by {count}; pass the checkpoint's head count with --heads {name}=N "
                              f"(imagebind_huge: {name}={IMAGEBIND_HUGE_HEADS.get(name, '?')})")
