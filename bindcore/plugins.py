"""The plugin registry: loads the ``bindcore`` entry points through pluggy and maps modality names
to the classes plugins register, crediting each registration to its distribution.

Loading is lazy, happens once per registry, and is fault-isolated: a plugin that fails to import or
to register is recorded (see ``bindcore plugins``) and every other plugin still loads. A plugin's failure is any
``Exception`` or ``SystemExit`` (a plugin calling ``sys.exit()`` must not end the caller's process) raised by its
import or one of its hooks; ``KeyboardInterrupt`` still stops everything.

Plugin commands (the ``register_commands`` hook) are collected separately, on demand, by
:meth:`Registry.plugin_commands`: the CLI asks for them only when a command is not a built-in one, so built-in
commands never import plugins.
"""

from __future__ import annotations

import difflib
import os
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from bindcore import hookspecs
from bindcore.errors import DuplicateModalityError, PluginLoadError, UnknownModalityError

if TYPE_CHECKING:
    import click

ENTRY_POINT_GROUP = "bindcore"

# What a plugin's import or hook may raise without taking the process down; KeyboardInterrupt is not one.
_PLUGIN_FAILURES = (Exception, SystemExit)


def _describe_failure(exc: BaseException) -> str:
    """``Type: message`` of a plugin's failure; a ``sys.exit()`` call is named as such (its message is the code)."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class PluginInfo:
    """What one plugin distribution contributed, or why it failed."""

    name: str
    version: str | None
    modalities: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    error: str | None = None

    def add_error(self, message: str) -> None:
        """Record a failure, keeping any earlier one (a plugin can fail in more than one hook)."""
        self.error = message if not self.error else f"{self.error}; {message}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "modalities": list(self.modalities),
                "commands": list(self.commands), "error": self.error}


@dataclass(frozen=True)
class _Provider:
    cls: type
    plugin: str
    version: str | None

    def label(self) -> str:
        return f"{self.plugin} {self.version}" if self.version else self.plugin


class Registry:
    """Modality classes by name, built from plugins. Use :func:`get_registry` for the process-wide one."""

    def __init__(self, *, load_entry_points: bool = True):
        self._load_entry_points = load_entry_points
        self._lock = threading.RLock()
        self._loaded = False
        self.pm = pluggy.PluginManager("bindcore")
        self.pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, PluginInfo] = {}
        self._providers: dict[str, list[_Provider]] = {}
        self._commands: dict[str, click.Command] = {}
        self._command_owners: dict[str, str] = {}
        self._commands_collected: set[str] = set()  # plugins whose register_commands hook has run

    # -- loading -------------------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if self._load_entry_points:
                self._load_from_entry_points()

    def _load_from_entry_points(self) -> None:
        only = os.environ.get("BINDCORE_LOAD_PLUGINS")
        allowed = None if only is None else {n.strip() for n in only.split(",") if n.strip()}
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = dist.name if dist is not None else ep.name
            version = dist.version if dist is not None else None
            if allowed is not None and dist_name not in allowed and ep.name not in allowed:
                continue
            try:
                module = ep.load()
            except _PLUGIN_FAILURES as exc:  # a broken plugin must not take the others down
                self._plugins[dist_name] = PluginInfo(dist_name, version,
                                                      error=f"import failed: {_describe_failure(exc)}")
                continue
            self.add_plugin(module, name=dist_name, version=version)

    def add_plugin(self, plugin: ModuleType | object, *, name: str, version: str | None = None) -> PluginInfo:
        """Register a plugin object (module or instance with ``@hookimpl`` functions) and collect its modalities."""
        with self._lock:
            self._loaded_guard()
            if name in self._plugins:
                raise PluginLoadError(f"a plugin named {name!r} is already registered")
            info = PluginInfo(name, version)
            self._plugins[name] = info
            try:
                self.pm.register(plugin, name=name)
                self.pm.check_pending()
            except _PLUGIN_FAILURES as exc:
                if self.pm.is_registered(plugin):
                    self.pm.unregister(plugin)
                info.error = f"invalid hooks: {_describe_failure(exc)}"
                return info
            for impl in self.pm.hook.register_modalities.get_hookimpls():
                if impl.plugin is plugin:
                    self._call_register(impl, info)
            return info

    def _loaded_guard(self) -> None:
        # add_plugin may be called before any lookup: load entry points first so ordering is stable.
        if not self._loaded:
            self._ensure_loaded()

    def _call_register(self, impl: Any, info: PluginInfo) -> None:
        collected: list[type] = []

        def register(cls: type) -> None:
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginLoadError(f"{cls!r} has no string 'name' attribute")
            collected.append(cls)

        try:
            impl.function(register=register)
        except _PLUGIN_FAILURES as exc:
            info.error = f"register_modalities failed: {_describe_failure(exc)}"
            return
        for cls in collected:
            self._providers.setdefault(cls.name, []).append(_Provider(cls, info.name, info.version))
            info.modalities.append(cls.name)
        for modality in info.modalities:
            providers = self._providers[modality]
            if len(providers) > 1:
                message = self._duplicate_message(modality)
                for provider in providers:
                    self._plugins[provider.plugin].error = message

    def _duplicate_message(self, name: str) -> str:
        labels = " and ".join(p.label() for p in self._providers[name])
        return (f"modality {name!r} is provided by more than one plugin: {labels}; "
                f"uninstall one of them")

    # -- commands ------------------------------------------------------------------------------------
    def plugin_commands(self, reserved: Collection[str] = (), *, load: bool = True) -> dict[str, click.Command]:
        """The click commands plugins add through ``register_commands``, by name.

        ``load=False`` returns the commands collected so far without importing plugins or running hooks.

        Each plugin's hook runs once per registry, against a fresh group of its own, so a hook that raises adds
        none of its commands and is recorded against its plugin, and each command is credited to its plugin. A
        name in ``reserved`` (the built-in commands) or already taken by another plugin is refused and recorded,
        never replaced.
        """
        import click

        with self._lock:
            if not load:
                return dict(self._commands)
            self._ensure_loaded()
            for impl in self.pm.hook.register_commands.get_hookimpls():
                if impl.plugin_name in self._commands_collected:
                    continue
                self._commands_collected.add(impl.plugin_name)
                info = self._plugins[impl.plugin_name]
                staging = click.Group(name="bindcore")
                try:
                    impl.function(cli=staging)
                except _PLUGIN_FAILURES as exc:
                    info.add_error(f"register_commands failed: {_describe_failure(exc)}")
                    continue
                for name, command in sorted(staging.commands.items()):
                    owner = "bindcore" if name in reserved else self._command_owners.get(name)
                    if owner is not None:
                        info.add_error(f"command {name!r} is already provided by {owner}; rename the plugin's "
                                       f"command (it was not added)")
                        continue
                    self._commands[name] = command
                    self._command_owners[name] = info.name
                    info.commands.append(name)
            return dict(self._commands)

    # -- queries -------------------------------------------------------------------------------------
    def plugins(self) -> list[PluginInfo]:
        self._ensure_loaded()
        return sorted(self._plugins.values(), key=lambda p: p.name)

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._providers)

    def get(self, name: str) -> type:
        """The modality class registered as ``name``; strict about unknown and duplicate names."""
        self._ensure_loaded()
        providers = self._providers.get(name)
        if not providers:
            raise UnknownModalityError(self._unknown_message(name))
        if len(providers) > 1:
            raise DuplicateModalityError(self._duplicate_message(name))
        return providers[0].cls

    def provider(self, name: str) -> str:
        """The distribution that registered ``name``."""
        self.get(name)
        return self._providers[name][0].plugin

    def _unknown_message(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        message = f"no modality named {name!r}."
        if close:
            message += f" Did you mean {', '.join(repr(c) for c in close)}?"
        message += f" Installed: {', '.join(known) if known else 'none'}."
        message += f" If it lives in a plugin, install it: pip install bind-{name}"
        broken = [p for p in self._plugins.values() if p.error]
        if broken:
            message += ". Plugins that failed to load: " + "; ".join(f"{p.name}: {p.error}" for p in broken)
        return message


_default: Registry | None = None
_default_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, loading installed plugins on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Registry()
        return _default


def set_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (tests use this); returns the previous one."""
    global _default
    with _default_lock:
        previous, _default = _default, registry
        return previous


def list_modalities() -> list[str]:
    """Sorted names of every registered modality."""
    return get_registry().names()


def modality_class(name: str) -> type:
    """The registered class of modality ``name``."""
    return get_registry().get(name)


def modality(name: str, **config: Any) -> Any:
    """Build modality ``name`` with ``config`` validated by its plugin's pydantic ``Config``."""
    return modality_class(name)(**config)


def plugin_table(plugins: Iterable[PluginInfo]) -> str:
    """A plain-text table of plugins for ``bindcore plugins``."""
    rows = [("distribution", "version", "modalities", "commands", "error")]
    rows += [(p.name, p.version or "-", ", ".join(p.modalities) or "-", ", ".join(p.commands) or "-", p.error or "")
             for p in plugins]
    last = len(rows[0]) - 1  # the error column is not padded
    widths = [max(len(r[i]) for r in rows) for i in range(last)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < last else cell for i, cell in enumerate(row)).rstrip()
        for row in rows
    )
