"""bind-audio: the ``audio`` modality for bindcore (ImageBind-compatible log-mel + audio ViT)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bindcore
from bind_audio.config import AudioConfig
from bind_audio.inputs import AudioArray
from bind_audio.model import AudioModality

__all__ = ["AudioArray", "AudioConfig", "AudioModality", "register_modalities"]


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    register(AudioModality)


@bindcore.hookimpl
def register_benchmarks(register: Callable[[Any], None]) -> None:
    from bind_audio.benchmarks_paper import PAPER_BENCHMARKS  # on demand: reading datasets is not needed to embed

    for benchmark in PAPER_BENCHMARKS:
        register(benchmark)
