"""Recipe checks of fine-tuning (``modalities.<name>.init``, ``train.freeze``, ``train.lora``): what an ``init``
path holds, the plugin config it fixes, and which parameters freeze entries select. Applying them to a model is
:mod:`bindcore.train.finetune`'s job (the vocabulary is documented there).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from bindcore.errors import ConfigError

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
_BLOCK_RANGE = re.compile(r"^blocks\.(\d+)(?:-(\d+))?$")
CHECKPOINT_SUFFIXES = (".pt", ".pth")


# -- what is frozen --------------------------------------------------------------------------------------------
def _block_of(name: str) -> int | None:
    found = _BLOCK.search(name)
    return int(found.group(1)) if found else None


def _default_group(group: str, name: str) -> bool | None:
    in_head = name.startswith("head.")
    block = _block_of(name)
    return {"stem": block is None and not in_head, "blocks": block is not None, "head": in_head,
            "trunk": not in_head}.get(group)


def frozen_names(parameter_names: Iterable[str], entries: Iterable[str],
                 groups: Mapping[str, Iterable[str]] | None = None) -> tuple[set[str], list[str]]:
    """(the parameter names ``entries`` freeze, one problem per entry that selects nothing or is out of range)."""
    names = list(parameter_names)
    groups = dict(groups or {})
    blocks = sorted({b for b in (_block_of(n) for n in names) if b is not None})
    frozen: set[str] = set()
    problems: list[str] = []
    for index, entry in enumerate(entries):
        where = f"[{index}] {entry!r}"
        ranged = _BLOCK_RANGE.match(entry)
        if entry in groups:
            patterns = list(groups[entry])
            chosen = {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
        elif ranged and entry not in groups:
            first, last = int(ranged.group(1)), int(ranged.group(2) or ranged.group(1))
            if not blocks:
                problems.append(f"{where}: this modality has no trunk blocks (parameters named '...blocks.<i>...')")
                continue
            if first > last or last > blocks[-1]:
                problems.append(f"{where}: this modality has blocks 0-{blocks[-1]}; write blocks.A-B with "
                                f"0 <= A <= B <= {blocks[-1]}")
                continue
            chosen = {n for n in names if (b := _block_of(n)) is not None and first <= b <= last}
        elif entry in ("stem", "blocks", "head", "trunk"):
            chosen = {n for n in names if _default_group(entry, n)}
        else:
            chosen = {n for n in names if fnmatch.fnmatchcase(n, entry)}
        if not chosen:
            known = ", ".join(sorted({"stem", "blocks", "blocks.A-B", "head", "trunk", *groups}))
            problems.append(f"{where} selects no parameter of this modality (names: {known}; or a glob over its "
                            f"parameter names, e.g. 'encoder.trunk.blocks.*.norm_*')")
        frozen |= chosen
    return frozen, problems


# -- where the weights come from -------------------------------------------------------------------------------
def _checkpoint_recipe(checkpoint: Path) -> Any:
    from bindcore.recipe import load_run_recipe

    run_dir = checkpoint.parent.parent
    recipe_path = run_dir / "recipe.yaml"
    if not recipe_path.is_file():
        raise ConfigError(f"{checkpoint} is not in a run's checkpoints/ folder (no {recipe_path}); init from a "
                          f"saved modality directory instead")
    return load_run_recipe(run_dir)


def saved_init(path: Path, name: str) -> dict[str, Any]:
    """What ``init: path`` holds for modality ``name``: ``config`` (the plugin config of the weights), ``license``,
    ``describe``. Raises :class:`ConfigError` naming the fix."""
    from bindcore.io import read_meta

    if path.is_dir():
        meta = read_meta(path)
        if meta["modality"] != name:
            raise ConfigError(f"{path} holds a {meta['modality']!r} modality, not {name!r}")
        return {"config": meta["config"], "license": meta.get("license"), "describe": str(path)}
    if path.is_file() and path.suffix in CHECKPOINT_SUFFIXES:
        recipe = _checkpoint_recipe(path)
        if name not in recipe.modalities:
            raise ConfigError(f"the run of {path} did not train {name!r} (it trained "
                              f"{', '.join(sorted(recipe.modalities))})")
        block = recipe.modalities[name]
        license = saved_init(block.init, name)["license"] if block.init is not None else None
        return {"config": block.config.model_dump(mode="json"), "license": license, "describe": str(path),
                "recipe": recipe}
    raise ConfigError(f"not found: {path} (init is a saved modality directory, e.g. `bindcore convert`'s "
                      f"OUT/{name} or RUN/modalities/{name}, or a run's checkpoint file)")


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _with_key(values: Mapping[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    result = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in values.items()}
    node = result
    parts = dotted.split(".")
    for part in parts[:-1]:
        node[part] = dict(node.get(part) or {})
        node = node[part]
    node[parts[-1]] = value
    return result


def parameter_shapes(cls: type, config: Any) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes of ``cls(config)``, built on the meta device (no memory, no time)."""
    try:
        with torch.device("meta"):
            module = cls(config)
    except Exception:  # a plugin that cannot build on meta (e.g. reads a file at init): build it for real
        module = cls(config)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def merge_init_options(cls: type, options: Mapping[str, Any], init: Path, prefix: str,
                       problems: list[str]) -> dict[str, Any] | None:
    """The plugin options of ``modalities.<name>`` with ``init``: the saved config, updated by the recipe's keys
    that keep every parameter shape; each key that changes a shape is a problem naming both values."""
    try:
        saved = saved_init(init, cls.name)
    except ConfigError as error:
        problems.append(f"{prefix}.init: {error}")
        return None
    base = saved["config"]
    try:
        saved_config = cls.Config.model_validate(base)
    except Exception as error:  # the saved directory's plugin version differs
        problems.append(f"{prefix}.init: the config saved in {saved['describe']} does not validate with this "
                        f"{cls.name} plugin ({' '.join(str(error).split())[:300]})")
        return None
    expected = parameter_shapes(cls, saved_config)
    flat_saved, merged = _flatten(base), dict(base)
    for key, value in _flatten(options).items():
        if key in flat_saved and flat_saved[key] == value:
            continue
        candidate = _with_key(base, key, value)
        try:
            config = cls.Config.model_validate(candidate)
        except Exception:
            merged = _with_key(merged, key, value)  # stage 2 reports the bad value with its path
            continue
        if parameter_shapes(cls, config) != expected:
            problems.append(f"{prefix}.{key}: {value!r} contradicts the {flat_saved.get(key)!r} of the weights in "
                            f"{saved['describe']} (init), which fixes the parameter shapes; remove the key or init "
                            f"from weights of that shape")
            continue
        merged = _with_key(merged, key, value)
    return merged


def check_finetune_settings(cls: type, config: Any, train: Any, prefix: str, problems: list[str]) -> None:
    """Recipe errors of ``train.freeze`` / ``train.lora`` against the model's parameter names (built on meta)."""
    if not train.freeze and train.lora is None:
        return
    from bindcore.nn.lora import resolve_targets

    try:
        with torch.device("meta"):
            module = cls(config)
    except Exception:
        module = cls(config)
    if train.freeze:
        frozen, found = frozen_names([n for n, _ in module.named_parameters()], train.freeze,
                                     getattr(cls, "freeze_groups", None))
        problems.extend(f"{prefix}.train.freeze{p}" for p in found)
        if not found and all(n in frozen for n, _ in module.named_parameters()):
            problems.append(f"{prefix}.train.freeze: freezes every parameter, nothing is left to train (freeze "
                            f"less, or train adapters with train.lora)")
    if train.lora is not None:
        _, found = resolve_targets(module, train.lora.targets)
        problems.extend(f"{prefix}.train.lora.targets: {p}" for p in found)


__all__ = ["CHECKPOINT_SUFFIXES", "check_finetune_settings", "frozen_names", "merge_init_options", "parameter_shapes",
           "saved_init"]
