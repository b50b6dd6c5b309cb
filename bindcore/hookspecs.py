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
    """Add click commands to the ``bindcore`` command group ``cli``."""
