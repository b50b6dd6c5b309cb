"""{{distribution}}: the ``{{name}}`` modality for bindcore."""

from __future__ import annotations

from collections.abc import Callable

import bindcore

from {{package}}.config import {{Name}}Config
from {{package}}.model import {{Name}}Modality
from {{package}}.preprocess import load_{{name}}_map
from {{package}}.toy import render_{{name}}

__version__ = "0.1.0"


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    """Called by bindcore when it loads the entry point in pyproject.toml."""
    register({{Name}}Modality)


__all__ = ["{{Name}}Config", "{{Name}}Modality", "load_{{name}}_map", "render_{{name}}"]
