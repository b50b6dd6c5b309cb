"""bind-audio: the ``audio`` modality for bindcore (ImageBind-compatible log-mel + audio ViT)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bindcore
from bind_audio.config import AudioConfig
from bind_audio.inputs import AudioArray
from bind_audio.model import AudioModality

__all__ = ["AudioArray", "AudioConfig", "AudioModality", "register_benchmarks", "register_modalities"]


@bindcore.hookimpl
def register_modalities(register: Callable[[type], None]) -> None:
    register(AudioModality)


@bindcore.hookimpl
def register_benchmarks(register: Callable[[Any], None]) -> None:
    # imported only when benchmarks are collected: reading datasets is not needed to embed
    from bind_audio.benchmarks import BENCHMARKS
    from bind_audio.benchmarks_paper import PAPER_BENCHMARKS

    for benchmark in (*BENCHMARKS, *PAPER_BENCHMARKS):
        register(benchmark)
