"""bind-depth: the ``depth`` modality for bindcore (ImageBind-layout depth encoder, disparity preprocessing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bindcore
from bind_depth.config import REFERENCE_INPUT_OPTIONS, TOY_WORLD_OPTIONS, DepthConfig
from bind_depth.model import DepthModality
from bind_depth.preprocess import DepthInput, decode_sunrgbd_depth, depth_to_disparity

__version__ = "0.1.0"


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    register(DepthModality)


@bindcore.hookimpl
def register_data_kinds(register: Callable[[Any], None]) -> None:
    from bind_depth.data_kind import SUNRGBD

    register(SUNRGBD)


@bindcore.hookimpl
def register_benchmarks(register: Callable[[Any], None]) -> None:
    from bind_depth.benchmarks import BENCHMARKS  # on demand: reading datasets is not needed to embed

    for benchmark in BENCHMARKS:
        register(benchmark)


__all__ = [
    "REFERENCE_INPUT_OPTIONS",
    "TOY_WORLD_OPTIONS",
    "DepthConfig",
    "DepthInput",
    "DepthModality",
    "decode_sunrgbd_depth",
    "depth_to_disparity",
]
