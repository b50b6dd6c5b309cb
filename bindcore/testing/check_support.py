"""The machinery of the conformance checks (:mod:`bindcore.testing.checks`): the registry of named checks, the
failure type, and the helpers the checks share (property runs, comparisons, RNG snapshots)."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from torch import Tensor

from bindcore.testing.subject import ModalityUnderTest


class ConformanceFailure(AssertionError):
    """A modality does not satisfy a conformance check."""


@dataclass(frozen=True)
class Check:
    """One registered check and what it needs from the modality to apply."""

    func: Callable[[ModalityUnderTest], None]
    needs_trainable: bool = False
    needs_invalid_inputs: bool = False
    needs_frozen: bool = False

    @property
    def name(self) -> str:
        return self.func.__name__

    def not_applicable(self, subject: ModalityUnderTest) -> str | None:
        """Why this check does not apply to ``subject`` (shown as the skip reason), or None."""
        if self.needs_trainable and not getattr(subject.cls, "trainable", True):
            return (f"{subject.cls.__name__}.trainable is False (a frozen anchor wrapper is never trained), "
                    f"so {self.name} does not apply")
        if self.needs_frozen and getattr(subject.cls, "trainable", True):
            return (f"{subject.cls.__name__} is trainable, so {self.name} (for frozen anchor wrappers) does not "
                    f"apply; check_gradients_reach_trainable_parameters covers it")
        if self.needs_invalid_inputs and not subject.invalid_inputs:
            return f"no invalid_inputs declared for {subject.name}, so {self.name} has nothing to check"
        return None

    def __call__(self, subject: ModalityUnderTest) -> None:
        self.func(subject)

    def __repr__(self) -> str:
        return self.name


#: Every check by name, in the order they run (cheap configuration checks first, training last).
CHECKS: dict[str, Check] = {}


def _check(*, needs_trainable: bool = False, needs_invalid_inputs: bool = False, needs_frozen: bool = False):
    def register(func: Callable[[ModalityUnderTest], None]) -> Callable[[ModalityUnderTest], None]:
        CHECKS[func.__name__] = Check(func, needs_trainable, needs_invalid_inputs, needs_frozen)
        return func

    return register


def check_names() -> list[str]:
    """Names of every check, in run order."""
    return list(CHECKS)


def _fail(subject: ModalityUnderTest, message: str) -> None:
    raise ConformanceFailure(f"modality {subject.name!r}: {message}")


# -- helpers -------------------------------------------------------------------------------------------
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
               HealthCheck.large_base_example]


def _for_all(subject: ModalityUnderTest, strategy: st.SearchStrategy[Any], test: Callable[[Any], None], *,
             model: bool = False) -> None:
    """Run ``test`` on examples of ``strategy``; model checks use fewer examples and skip shrinking."""
    examples = max(2, subject.max_examples // 3) if model else max(2, subject.max_examples)
    phases = [Phase.explicit, Phase.generate] if model else [Phase.explicit, Phase.generate, Phase.shrink]
    runner = settings(max_examples=examples, deadline=None, derandomize=True, database=None, phases=phases,
                      suppress_health_check=_SUPPRESSED, print_blob=False)(given(strategy)(test))
    runner()


def _batches(subject: ModalityUnderTest, min_size: int = 1, max_size: int = 3) -> st.SearchStrategy[list[Any]]:
    return st.lists(subject.inputs, min_size=min_size, max_size=max_size)


def _same_raw(a: Any, b: Any) -> bool:
    """Deep equality of raw inputs (arrays, tensors, containers, scalars; NaN equals NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(b, Tensor) and isinstance(a, Tensor) and _same_tensor(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_raw(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_raw(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if dataclasses.is_dataclass(a):  # e.g. a recording wrapper holding arrays: compare field by field
        return all(_same_raw(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    try:
        return bool(a == b)
    except Exception:  # no usable == (e.g. array-valued): fall back to the attributes
        if hasattr(a, "__dict__"):
            return _same_raw(vars(a), vars(b))
        return True


def _same_tensor(a: Tensor, b: Tensor) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if a.is_floating_point() or a.is_complex():
        return bool(torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True))
    return bool(torch.equal(a, b))


def _same_up_to_rounding(a: Tensor, b: Tensor) -> bool:
    """Equal, or floating point within a few ulps of ``b``'s largest magnitude (NaN where ``b`` has NaN)."""
    if not (a.is_floating_point() and a.shape == b.shape and a.dtype == b.dtype and a.device == b.device):
        return _same_tensor(a, b)
    scale = float(b.nan_to_num(0.0, 0.0, 0.0).abs().max()) if b.numel() else 0.0
    tolerance = 8 * torch.finfo(b.dtype).eps * max(scale, 1.0)
    return bool(torch.allclose(a, b, rtol=0.0, atol=tolerance, equal_nan=True))


def _rng_state() -> tuple[Tensor, Any, Any]:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _changed_rngs(before: tuple[Tensor, Any, Any], after: tuple[Tensor, Any, Any]) -> list[str]:
    changed = []
    if not torch.equal(before[0], after[0]):
        changed.append("torch")
    np_before, np_after = before[1], after[1]
    if not (np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1])
            and tuple(np_before[2:]) == tuple(np_after[2:])):
        changed.append("numpy.random")
    if before[2] != after[2]:
        changed.append("random")
    return changed


def _preprocess(subject: ModalityUnderTest, module: Any, batch: Sequence[Any]) -> Tensor:
    x = module.preprocess(batch)
    if not isinstance(x, Tensor):
        _fail(subject, f"preprocess must return a torch.Tensor, got {type(x).__name__}")
    return x


def _embed(module: Any, x: Tensor) -> Tensor:
    """encode → project on an already preprocessed batch (no autograd)."""
    with torch.no_grad():
        return module.project(module.encode(module.to_model_input(x)))
