"""bind-thermal: the ``thermal`` modality for bindcore (ImageBind-layout thermal encoder)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bindcore
from bind_thermal.config import TOY_WORLD_OPTIONS, ThermalConfig
from bind_thermal.model import ThermalModality

__version__ = "0.1.0"


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    register(ThermalModality)


@bindcore.hookimpl
def register_data_kinds(register: Callable[[Any], None]) -> None:
    from bind_thermal.data_kind import LLVIP

    register(LLVIP)


@bindcore.hookimpl
def register_benchmarks(register: Callable[[Any], None]) -> None:
    from bind_thermal.benchmarks import BENCHMARKS  # on demand: reading datasets is not needed to embed

    for benchmark in BENCHMARKS:
        register(benchmark)


__all__ = ["TOY_WORLD_OPTIONS", "ThermalConfig", "ThermalModality"]
