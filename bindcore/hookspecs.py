"""The hooks a bindcore plugin can implement (entry-point group ``bindcore``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("bindcore")
hookimpl = pluggy.HookimplMarker("bindcore")


@hookspec
def register_modalities(register: Callable[[type[Any]], None]) -> None:
    """Call ``register(ModalityClass)`` once per modality this plugin provides."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands to ``cli`` (e.g. ``@cli.command("name")``); they become ``bindcore name``.

    ``cli`` is a click group of this plugin's own, merged into ``bindcore`` afterwards: a name that a built-in
    command or an earlier plugin already uses is refused, and if the hook raises none of its commands is added;
    both are reported by ``bindcore plugins``. The hook runs only when a command that is not built in is invoked
    (and for ``bindcore plugins``), so plugin commands do not appear in ``bindcore --help``.
    """


@hookspec
def register_data_kinds(register: Callable[[Any], None]) -> None:
    """Call ``register(bindcore.data.kinds.DataKind(name, build, description))`` once per data kind this plugin
    provides (a reader of a published dataset tree, e.g. ``sunrgbd``); recipes name it as
    ``modalities.<name>.data.kind``. A name bindcore or another plugin already uses is refused."""


@hookspec
def register_benchmarks(register: Callable[[Any], None]) -> None:
    """Call ``register(bindcore.eval.benchmarks.spec.Benchmark(...))`` once per benchmark this plugin provides
    (``bindcore benchmark --list`` shows them). A name another plugin already registered is refused."""
