"""The benchmark registry: :class:`~bindcore.eval.benchmarks.spec.Benchmark` objects by name, collected from the
``register_benchmarks`` hook of every loaded plugin.

The core's own benchmarks (``labelled``, ``pairs``) are a plugin too, as pytest's built-in plugins are: the module
:mod:`bindcore.eval.benchmarks.generic` implements the same hook and is collected first, under the name
``bindcore``. Collection is fault-isolated like the modality registry's: a plugin whose hook raises (or registers
something that is not a ``Benchmark``) is recorded against that plugin (``bindcore plugins`` shows it) and the
other plugins' benchmarks stay available. A name registered twice keeps the first registration; the second is
refused and recorded, naming both plugins.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bindcore.errors import ConfigError
from bindcore.eval.benchmarks.spec import Benchmark

if TYPE_CHECKING:
    from bindcore.plugins import Registry

BUILTIN_PLUGIN = "bindcore"


class UnknownBenchmarkError(ConfigError):
    """No loaded plugin provides a benchmark of that name."""


@dataclass
class BenchmarkRegistry:
    """Benchmarks by name, and the problems met while collecting them (plugin name → messages)."""

    benchmarks: dict[str, Benchmark] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # benchmark name → plugin that registered it
    failures: dict[str, list[str]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.benchmarks)

    def get(self, name: str) -> Benchmark:
        benchmark = self.benchmarks.get(name)
        if benchmark is None:
            raise UnknownBenchmarkError(self._unknown_message(name))
        return benchmark

    def _unknown_message(self, name: str) -> str:
        known = self.names()
        message = f"no benchmark named {name!r}."
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if close:
            message += f" Did you mean {', '.join(repr(c) for c in close)}?"
        message += f" Known: {', '.join(known) if known else 'none'} (`bindcore benchmark --list` describes them)."
        if self.failures:
            message += " Plugins whose benchmarks failed to register: " + "; ".join(
                f"{plugin}: {'; '.join(problems)}" for plugin, problems in sorted(self.failures.items()))
        return message

    # -- collection ----------------------------------------------------------------------------------
    def collect(self, plugin: str, hook: Callable[..., Any]) -> None:
        """Run one plugin's ``register_benchmarks`` hook; what it registers is added only if the hook succeeds."""
        staged: list[Benchmark] = []

        def register(benchmark: Any) -> None:
            if not isinstance(benchmark, Benchmark):
                raise TypeError(f"register() takes a bindcore.eval.benchmarks.spec.Benchmark, got "
                                f"{type(benchmark).__name__}")
            staged.append(benchmark)

        try:
            hook(register=register)
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the other benchmarks down
            self._fail(plugin, f"register_benchmarks failed: {type(exc).__name__}: {exc}")
            return
        for benchmark in staged:
            owner = self.owners.get(benchmark.name)
            if owner is not None:
                self._fail(plugin, f"benchmark {benchmark.name!r} is already provided by {owner}; rename the "
                                   f"benchmark of {plugin} (it was not added)")
                continue
            self.benchmarks[benchmark.name] = benchmark
            self.owners[benchmark.name] = plugin

    def _fail(self, plugin: str, message: str) -> None:
        self.failures.setdefault(plugin, []).append(message)


def builtin_plugins() -> list[tuple[str, ModuleType]]:
    """The core's benchmark plugins (collected before any installed plugin)."""
    from bindcore.eval.benchmarks import generic

    return [(BUILTIN_PLUGIN, generic)]


def collect_benchmarks(plugins: Registry, builtins: list[tuple[str, ModuleType]] | None = None) -> BenchmarkRegistry:
    """The benchmarks of the built-in plugins and of every plugin ``plugins`` loaded, in a stable order (built-ins,
    then plugins by name). Failures are also recorded on the plugin's entry in ``plugins``."""
    registry = BenchmarkRegistry()
    for name, module in builtin_plugins() if builtins is None else builtins:
        registry.collect(name, module.register_benchmarks)
    plugins.plugins()  # loads the entry points
    impls = sorted(plugins.pm.hook.register_benchmarks.get_hookimpls(), key=lambda impl: impl.plugin_name)
    for impl in impls:
        registry.collect(impl.plugin_name, impl.function)
    known = {info.name: info for info in plugins.plugins()}
    for plugin, problems in registry.failures.items():
        if plugin in known:
            for problem in problems:
                known[plugin].add_error(problem)
    return registry


_cache: tuple[Any, BenchmarkRegistry] | None = None
_cache_lock = threading.Lock()


def get_benchmarks() -> BenchmarkRegistry:
    """The benchmarks of the process-wide plugin registry (collected once per plugin registry)."""
    global _cache
    from bindcore.plugins import get_registry

    plugins = get_registry()
    with _cache_lock:
        if _cache is None or _cache[0] is not plugins:
            _cache = (plugins, collect_benchmarks(plugins))
        return _cache[1]


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name``; :class:`UnknownBenchmarkError` lists the known ones."""
    return get_benchmarks().get(name)
