"""bind-thermal: the ``thermal`` modality for bindcore (ImageBind-layout thermal encoder)."""

from __future__ import annotations

from collections.abc import Callable

import bindcore
from bind_thermal.config import TOY_WORLD_OPTIONS, ThermalConfig
from bind_thermal.model import ThermalModality

__version__ = "0.1.0"


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    register(ThermalModality)


__all__ = ["TOY_WORLD_OPTIONS", "ThermalConfig", "ThermalModality"]
