"""LoRA adapters on a modality's weight matrices, as weight parametrizations: ``W → W + (alpha/rank)·B·A``.

Why not peft's wrappers: bindcore's trunk (:mod:`bindcore.nn.transformer`) keeps ImageBind's layout, with q/k/v
packed in one raw ``attn.in_proj_weight`` parameter, and applies every projection by reading the layer's
``.weight`` into :func:`bindcore.nn.linear.linear` (the oneDNN inference path) instead of calling the
``nn.Linear`` module. peft's ``lora.Linear`` replaces the module's ``forward``, which those reads bypass: the
adapters would silently do nothing (``out_proj`` always, ``mlp.fc1``/``fc2`` at inference). peft's
``target_parameters`` wrapper applies LoRA only inside the wrapper's own forward (peft documents that reading
``module.weight`` does not see it) and refuses dropout. A parametrization is seen by every read of the weight, on
every code path (training, inference, gradient checkpointing, DDP), so the adapters reach all four projections.

Dropout cannot act on a layer's input through its weight, so ``dropout`` drops input features of the low-rank path
(columns of ``A``), one mask per forward, scaled by ``1/(1-p)``; it acts in training mode only.

Saved beside the base weights: ``adapter.safetensors`` (``<weight name>.lora_A`` / ``.lora_B``) and ``adapter.json``
(rank, alpha, dropout, the adapted weights).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"
ADAPTER_FORMAT = "bindcore-lora/1"
#: Short names for the trunk's projections (suffixes of the parameter names of :class:`bindcore.nn.Block`).
TARGET_NAMES: dict[str, str] = {
    "qkv": "*.attn.in_proj_weight",
    "out": "*.attn.out_proj.weight",
    "fc1": "*.mlp.fc1.weight",
    "fc2": "*.mlp.fc2.weight",
}
DEFAULT_TARGETS = ("qkv", "out", "fc1", "fc2")
_PARAMETRIZED = ".parametrizations."


class LoraDelta(nn.Module):
    """The parametrization ``W ↦ W + scaling · B · A``; ``B`` starts at zero, so an adapted model starts equal."""

    def __init__(self, out_features: int, in_features: int, rank: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.rank, self.alpha, self.dropout = rank, alpha, dropout
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=5**0.5)  # peft's (and the LoRA paper's) initialisation

    def delta(self) -> Tensor:
        a = self.lora_A
        if self.training and self.dropout > 0:
            keep = torch.rand(a.shape[1], device=a.device) >= self.dropout
            a = a * (keep.to(a.dtype) / (1 - self.dropout))
        return (self.lora_B @ a) * self.scaling

    def forward(self, weight: Tensor) -> Tensor:
        return weight + self.delta().to(weight.dtype)


def resolve_targets(module: nn.Module, targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """(names of the 2-D weights ``targets`` select, problems): each target is a short name of
    :data:`TARGET_NAMES` or a glob over parameter names; one that selects no 2-D weight is a problem."""
    weights = {name: p for name, p in module.named_parameters() if p.ndim == 2}
    chosen: list[str] = []
    problems: list[str] = []
    for target in targets:
        pattern = TARGET_NAMES.get(target, target)
        matched = [name for name in weights if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            known = ", ".join(TARGET_NAMES)
            problems.append(f"{target!r} selects no weight matrix of this modality (short names: {known}; or a glob "
                            f"over its parameter names, e.g. 'encoder.trunk.blocks.*.attn.in_proj_weight')")
        chosen.extend(name for name in matched if name not in chosen)
    return chosen, problems


def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, leaf = name.rpartition(".")
    return (module.get_submodule(path) if path else module), leaf


def add_lora(module: nn.Module, targets: Sequence[str], *, rank: int, alpha: float, dropout: float = 0.0) -> list[str]:
    """Freeze every parameter of ``module`` and put a trainable :class:`LoraDelta` on each targeted weight; returns
    the adapted weights' names. The adapters take the weight's device and dtype."""
    names, problems = resolve_targets(module, targets)
    if problems:
        raise ValueError("; ".join(problems))
    for param in module.parameters():
        param.requires_grad_(False)
    for name in names:
        owner, leaf = _owner(module, name)
        weight = getattr(owner, leaf)
        delta = LoraDelta(weight.shape[0], weight.shape[1], rank, alpha, dropout).to(weight.device, weight.dtype)
        parametrize.register_parametrization(owner, leaf, delta, unsafe=True)
    module.lora_config = {"format": ADAPTER_FORMAT, "rank": rank, "alpha": alpha, "dropout": dropout,
                          "targets": list(targets), "weights": names}
    return names


def has_lora(module: nn.Module) -> bool:
    return any(isinstance(m, LoraDelta) for m in module.modules())


def _plain_name(key: str) -> str:
    """``a.parametrizations.weight.original`` → ``a.weight``."""
    head, _, tail = key.partition(_PARAMETRIZED)
    leaf = tail.split(".", 1)[0]
    return f"{head}.{leaf}" if head else leaf


def split_state(module: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(base weights under their plain names, adapter weights as ``<weight name>.lora_A/B``) of ``module``."""
    base: dict[str, Tensor] = {}
    adapter: dict[str, Tensor] = {}
    for key, value in module.state_dict().items():
        if _PARAMETRIZED not in key:
            base[key] = value
        elif key.endswith(".original"):
            base[_plain_name(key)] = value
        else:  # a.parametrizations.weight.0.lora_A
            adapter[f"{_plain_name(key)}.{key.rsplit('.', 1)[1]}"] = value
    return base, adapter


def write_adapter(module: nn.Module, folder: str | os.PathLike[str]) -> None:
    """Write ``adapter.safetensors`` and ``adapter.json`` of ``module``'s adapters into ``folder``."""
    from bindcore.safetensors_io import write_safetensors

    folder = Path(folder)
    _, adapter = split_state(module)
    write_safetensors(folder / ADAPTER_FILE, {k: v.detach().contiguous().cpu() for k, v in adapter.items()})
    (folder / ADAPTER_CONFIG).write_text(json.dumps(module.lora_config, indent=2) + "\n")


def read_adapter_config(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``adapter.json`` of a saved modality directory (None: it has no adapters). Raises ``ValueError`` when the
    directory is half an adapter (one file of the two) or the config is damaged."""
    folder = Path(folder)
    config_path, weights_path = folder / ADAPTER_CONFIG, folder / ADAPTER_FILE
    if not config_path.exists() and not weights_path.exists():
        return None
    if not (config_path.is_file() and weights_path.is_file()):
        present, missing = (config_path, weights_path) if config_path.exists() else (weights_path, config_path)
        raise ValueError(f"{present.name} is there but {missing.name} is missing")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{config_path.name} is damaged ({error})") from None
    if not isinstance(config, dict) or config.get("format") != ADAPTER_FORMAT or \
            not isinstance(config.get("weights"), list):
        raise ValueError(f"{config_path.name} is not a {ADAPTER_FORMAT} adapter config")
    return config


def attach_adapter(module: nn.Module, folder: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Put the adapters saved in ``folder`` (config from :func:`read_adapter_config`) on ``module``, strictly."""
    from safetensors.torch import load_file

    add_lora(module, config["weights"], rank=int(config["rank"]), alpha=float(config["alpha"]),
             dropout=float(config.get("dropout", 0.0)))
    module.lora_config = dict(config)
    saved = load_file(str(Path(folder) / ADAPTER_FILE))
    _, expected = split_state(module)
    if set(saved) != set(expected):
        missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
        raise ValueError(f"{ADAPTER_FILE} does not match {ADAPTER_CONFIG} (missing {missing[:3]}, "
                         f"unexpected {extra[:3]})")
    for key, value in saved.items():
        name, _, part = key.rpartition(".")
        owner, leaf = _owner(module, name)
        target = getattr(owner.parametrizations, leaf)[0]
        current = getattr(target, part)
        if current.shape != value.shape:
            raise ValueError(f"{ADAPTER_FILE}: {key} has shape {tuple(value.shape)}, the model's is "
                             f"{tuple(current.shape)}")
        with torch.no_grad():
            current.copy_(value)


def merge_lora(module: nn.Module) -> nn.Module:
    """Fold every adapter into its weight (``W + scaling·B·A``, computed in float64) and remove the
    parametrizations: a plain module whose parameters are trainable again."""
    for sub in list(module.modules()):
        if not parametrize.is_parametrized(sub):
            continue
        for leaf in list(sub.parametrizations.keys()):
            parametrization = getattr(sub.parametrizations, leaf)
            original = parametrization.original
            with torch.no_grad():
                merged = original.double()
                for delta in parametrization:
                    merged = merged + (delta.lora_B.double() @ delta.lora_A.double()) * delta.scaling
            parametrize.remove_parametrizations(sub, leaf, leave_parametrized=False)
            with torch.no_grad():
                getattr(sub, leaf).copy_(merged.to(original.dtype))
    for param in module.parameters():
        param.requires_grad_(True)
    if hasattr(module, "lora_config"):
        del module.lora_config
    return module


__all__ = ["ADAPTER_CONFIG", "ADAPTER_FILE", "DEFAULT_TARGETS", "TARGET_NAMES", "LoraDelta", "add_lora",
           "attach_adapter", "has_lora", "merge_lora", "read_adapter_config", "resolve_targets", "split_state",
           "write_adapter"]
