"""{{distribution}}: the ``{{name}}`` modality for bindcore."""

from __future__ import annotations

from collections.abc import Callable

import bindcore

from {{package}}.config import TINY, {{Name}}Config
from {{package}}.model import {{Name}}Modality
from {{package}}.preprocess import load_{{name}}
from {{package}}.toy import render_{{name}}

__version__ = "0.1.0"


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    """Called by bindcore when it loads the entry point in pyproject.toml."""
    register({{Name}}Modality)


__all__ = ["TINY", "{{Name}}Config", "{{Name}}Modality", "load_{{name}}", "render_{{name}}"]
