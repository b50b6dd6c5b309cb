"""bind-audio: the ``audio`` modality for bindcore (ImageBind-compatible log-mel + audio ViT)."""

from __future__ import annotations

from collections.abc import Callable

import bindcore
from bind_audio.config import AudioConfig
from bind_audio.inputs import AudioArray
from bind_audio.model import AudioModality

__all__ = ["AudioArray", "AudioConfig", "AudioModality", "register_benchmarks", "register_modalities"]


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    register(AudioModality)


@bindcore.hookimpl
def register_benchmarks(register: Callable[[object], None]) -> None:
    from bind_audio.benchmarks import BENCHMARKS  # imported only when benchmarks are collected

    for benchmark in BENCHMARKS:
        register(benchmark)
