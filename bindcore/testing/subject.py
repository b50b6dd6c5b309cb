"""What the conformance checks run against: a modality class, a small config and valid raw inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from bindcore.modality_base import Modality


@dataclass(frozen=True)
class ModalityUnderTest:
    """A modality prepared for the conformance checks.

    ``modality``: the class, or the name it is registered under. ``inputs``: a hypothesis strategy that
    draws ONE valid raw input (what a user passes to ``preprocess`` inside a list). ``config``: options
    for a tiny instance so the model checks stay fast. ``invalid_inputs``: raw items that
    ``preprocess`` must reject with :class:`bindcore.InputError`. ``known_failures``: check name →
    reason; those checks are expected to fail (strict: a known failure that passes is reported).
    """

    modality: type[Modality] | str
    inputs: SearchStrategy[Any]
    config: Mapping[str, Any] = field(default_factory=dict)
    invalid_inputs: Sequence[Any] = ()
    known_failures: Mapping[str, str] = field(default_factory=dict)
    #: hypothesis examples per property check (preprocess checks use this many, model checks a third).
    max_examples: int = 20
    #: absolute tolerance of batch invariance and save/load comparisons of embeddings.
    atol: float = 1e-4
    #: the dtype ``preprocess`` must return, when the plugin wants to pin it (None: any, but always the same).
    expected_dtype: Any = None
    #: toy-world binding: optimiser steps, learning rate, batch size and the held-out accuracy to reach.
    binding_steps: int = 200
    binding_lr: float = 3e-3
    binding_batch_size: int = 32
    binding_min_accuracy: float = 0.3
    #: a test-id label instead of the modality name (to tell two configs of one modality apart).
    label: str | None = None

    @property
    def cls(self) -> type[Modality]:
        if isinstance(self.modality, str):
            from bindcore.plugins import modality_class

            return modality_class(self.modality)
        return self.modality

    @property
    def name(self) -> str:
        """A readable id for test names: ``label`` if given, else the modality's registered name."""
        if self.label:
            return self.label
        if isinstance(self.modality, str):
            return self.modality
        return str(getattr(self.modality, "name", self.modality.__name__))

    def build(self, seed: int = 0) -> Modality:
        """A fresh instance from ``config``, initialised from ``seed`` without touching the global RNG."""
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.cls(**dict(self.config))
