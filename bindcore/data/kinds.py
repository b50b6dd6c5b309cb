"""Data kinds plugins provide (``register_data_kinds``): readers of published dataset trees (SUN RGB-D, LLVIP, ...)
that the core must not import. A plugin registers a :class:`DataKind`; a recipe names it as
``modalities.<name>.data.kind`` with ``root`` (the tree), ``split`` and kind-specific ``options``; the recipe's
second stage refuses a kind no installed plugin provides, listing those that are.

:class:`ListedSource` is what most kinds return: pairs listed up front (raw inputs the plugins' ``preprocess``
accepts), plus the listed inputs that could not be used (``unusable``: written to ``RUN/skipped.jsonl`` and counted
in the log, never dropped silently).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindcore.data.sources import IMAGE_KEY, PairedSource
from bindcore.errors import ConfigError

#: Kinds the core reads itself.
BUILTIN_KINDS = ("toy", "manifest", "webdataset", "video")


@dataclass(frozen=True)
class DataRequest:
    """What a recipe asks of a data kind: the modality it pairs with images, the tree's ``root``, the ``split``,
    kind-specific ``options``, the modality's module (its config: clip lengths, ...) and the run's seed."""

    modality: str
    root: Path | None
    split: str | None
    options: dict[str, Any]
    module: Any
    seed: int
    where: str  #: the recipe path of the data block, for error messages


@dataclass(frozen=True)
class DataKind:
    """A data kind: ``build(request)`` returns the :class:`PairedSource` of a recipe's data block."""

    name: str
    build: Callable[[DataRequest], PairedSource]
    description: str = ""
    plugin: str = ""


def data_kinds(registry: Any = None) -> dict[str, DataKind]:
    """The data kinds installed plugins provide, by name (a name two plugins register is an error)."""
    from bindcore.plugins import get_registry

    registry = registry or get_registry()
    registry._ensure_loaded()
    kinds: dict[str, DataKind] = {}
    for impl in registry.pm.hook.register_data_kinds.get_hookimpls():
        plugin = registry.pm.get_name(impl.plugin) or str(impl.plugin)

        def register(kind: DataKind, plugin: str = plugin) -> None:
            if kind.name in BUILTIN_KINDS or kind.name in kinds:
                other = "bindcore" if kind.name in BUILTIN_KINDS else kinds[kind.name].plugin
                raise ConfigError(f"data kind {kind.name!r} of plugin {plugin} is already provided by {other}; "
                                  f"uninstall one of them")
            kinds[kind.name] = DataKind(kind.name, kind.build, kind.description, plugin)

        impl.function(register=register)
    return kinds


def unknown_kind_message(kind: str, registry: Any = None) -> str:
    installed = data_kinds(registry)
    named = [*BUILTIN_KINDS, *(f"{k} ({v.plugin})" for k, v in sorted(installed.items()))]
    return (f"unknown data kind {kind!r}; installed: {', '.join(named)} (a dataset kind comes with the plugin of "
            f"its modality, e.g. sunrgbd with bind-depth, llvip with bind-thermal)")


def build_plugin_source(name: str, data: Any, recipe_file: Path | None, module: Any, seed: int) -> PairedSource:
    """The source of a ``modalities.<name>.data`` block whose kind a plugin provides."""
    from bindcore.recipe.schema import resolve_path

    kinds = data_kinds()
    if data.kind not in kinds:
        raise ConfigError(f"modalities.{name}.data.kind: {unknown_kind_message(data.kind)}")
    root = resolve_path(recipe_file, data.root) if data.root else None
    request = DataRequest(name, root, data.split, dict(data.options), module, seed, f"modalities.{name}.data")
    return kinds[data.kind].build(request)


def check_plugin_source(name: str, block: Any, seed: int, recipe_file: Path | None,
                        problems: list[str]) -> tuple[int | None, str | None]:
    """``bindcore train --check`` of a plugin kind: builds its source (the plugin reads the tree's listing)."""
    prefix = f"modalities.{name}.data"
    try:
        source = build_plugin_source(name, block.data, recipe_file, block, seed)
    except Exception as error:  # a plugin's reader: ConfigError, InputError or its own; named, not raised
        problems.append(f"{prefix}: {error}")
        return None, None
    unusable = getattr(source, "unusable", [])
    left_out = f", {len(unusable)} listed inputs left out" if unusable else ""
    return len(source), f"{prefix}: {len(source)} {block.data.kind} pairs listed{left_out}"


@dataclass
class ListedSource(PairedSource):
    """Pairs listed up front: ``items[n]`` holds ``image`` and the modality's raw input (file paths, or objects the
    plugin's ``preprocess`` accepts), ``names[n]`` says where item ``n`` comes from; ``unusable`` lists
    ``{"where", "reason"}`` of the inputs left out."""

    modality: str
    items: list[dict[str, Any]]
    names: list[str]
    origin: str  #: the tree and split, for the fingerprint and messages
    labels: list[int | None] | None = None
    unusable: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = (IMAGE_KEY, self.modality)
        if len(self.items) != len(self.names):
            raise ValueError("ListedSource needs one name per item")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def inputs_total(self) -> int:
        return len(self.items) + len(self.unusable)

    def load(self, index: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        item = {key: self.items[index][key] for key in (keys or self.keys)}
        item["label"] = self.label(index)
        return item

    def label(self, index: int) -> int | None:
        return self.labels[index] if self.labels is not None else None

    def describe(self, index: int) -> str:
        return f"{self.origin}: {self.names[index]}"

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        listed = hashlib.sha256(json.dumps([str(i.get(key)) for i in self.items]).encode()).hexdigest()[:16]
        return f"listed:{self.origin}:{key}:{len(self.items)}:{listed}"
