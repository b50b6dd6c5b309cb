"""One binding step with no avoidable host sync: the loss, the gradient norm and the non-finite check stay on the
device; the trainer reads them only at ``run.log_every``, at checkpoints and at the end.

A non-finite step is skipped on the device, as ``torch.amp.GradScaler`` skips one: fused AdamW (CUDA) takes a
``found_inf`` flag and leaves parameters, moments and step count untouched; any other optimiser's update is undone
with ``torch.where`` against a copy taken before it (on CPU, where reading the flag waits for nothing, the step is
simply not taken). :class:`NonFiniteWatch` remembers the first such step, so the
trainer can stop naming it (and the pair) before it writes the next checkpoint: the last good one stays intact.

On CPU the arithmetic is the one the trainer ran before (float64 sum of the micro-steps' losses, the same clipping
and AdamW), so results are bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class StepResult:
    """Device scalars of one optimiser step: the loss (float64, mean over micro-steps), the gradient norm before
    clipping, and whether both were finite (when not, the update was skipped)."""

    loss: Tensor
    grad_norm: Tensor
    finite: Tensor


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> Iterator[tuple[Any, Tensor]]:
    for group in optimizer.param_groups:
        for param in group["params"]:
            yield ("param", param), param
            for name, value in optimizer.state.get(param, {}).items():
                if isinstance(value, Tensor):
                    yield ("state", param, name), value


def _uses_found_inf(optimizer: torch.optim.Optimizer) -> bool:
    return bool(getattr(optimizer, "_step_supports_amp_scaling", False) and optimizer.defaults.get("fused"))


@torch.no_grad()
def step_unless_non_finite(optimizer: torch.optim.Optimizer, finite: Tensor) -> None:
    """``optimizer.step()``, skipped on the device (no host sync) where ``finite`` is False."""
    if _uses_found_inf(optimizer):
        optimizer.found_inf = (~finite).to(torch.float32)  # type: ignore[attr-defined]  # read by fused AdamW
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf  # type: ignore[attr-defined]
        return
    if finite.device.type == "cpu":  # no device queue to wait for: reading the flag costs nothing here
        if finite:
            optimizer.step()
        return
    step_then_undo_unless(optimizer, finite)


@torch.no_grad()
def step_then_undo_unless(optimizer: torch.optim.Optimizer, finite: Tensor) -> None:
    """``optimizer.step()``, then every parameter and state tensor put back where ``finite`` is False (any
    optimiser, on any device, at the cost of one copy of them)."""
    before = {key: value.clone() for key, value in _optimizer_tensors(optimizer)}
    optimizer.step()
    for key, value in _optimizer_tensors(optimizer):
        # State created by this very step (AdamW's moments and count on its first step) starts from zeros.
        old = before.get(key)
        value.copy_(torch.where(finite, value, old if old is not None else torch.zeros_like(value)))


def bind_step(head: nn.Module, model: nn.Module, optimizer: torch.optim.Optimizer, inputs: Tensor, targets: Tensor,
              *, micro_steps: int, grad_clip: float | None,
              autocast: Callable[[], AbstractContextManager[Any]]) -> StepResult:
    """Forward/backward of ``micro_steps`` equal chunks of the batch through ``model`` (``head`` or its DDP/compiled
    wrapper; DDP all-reduces on the last chunk only), clipping and the optimiser step, all without a host sync."""
    optimizer.zero_grad(set_to_none=True)
    modality = head.modality
    loss_total: Tensor | None = None
    for part, (x, y) in enumerate(zip(inputs.chunk(micro_steps), targets.chunk(micro_steps), strict=True)):
        last = part == micro_steps - 1
        context = model.no_sync() if (not last and hasattr(model, "no_sync")) else nullcontext()
        with context, autocast():
            z = model(modality.to_model_input(x) if hasattr(modality, "to_model_input") else x)
            loss = head.loss(z.float(), y).loss
        (loss / micro_steps).backward()
        # float64, as the Python float sum this replaces: logged losses stay what they were
        share = loss.detach().double() / micro_steps
        loss_total = share if loss_total is None else loss_total + share
    assert loss_total is not None
    grad_norm = torch.nn.utils.clip_grad_norm_([p for p in head.parameters() if p.requires_grad],
                                               grad_clip if grad_clip else float("inf"))
    finite = torch.isfinite(loss_total) & torch.isfinite(grad_norm)
    step_unless_non_finite(optimizer, finite)
    return StepResult(loss_total, grad_norm.detach(), finite)


class NonFiniteWatch:
    """The run's first non-finite step, kept on the device: :meth:`note` never syncs, :meth:`first` does."""

    def __init__(self, device: torch.device):
        self.step = torch.full((), -1, dtype=torch.int64, device=device)
        self.values = torch.zeros(2, dtype=torch.float64, device=device)  # its loss and gradient norm

    def note(self, step: int, result: StepResult) -> None:
        first = ~result.finite & (self.step < 0)
        self.step = torch.where(first, step, self.step)
        self.values = torch.where(first, torch.stack([result.loss, result.grad_norm.double()]), self.values)

    def first(self) -> tuple[int, str] | None:
        """``(step, what was non-finite)`` of the first bad step, or None (one host sync)."""
        step = int(self.step)
        if step < 0:
            return None
        loss, grad_norm = self.values.tolist()
        what = f"loss {loss}" if not torch.isfinite(torch.tensor(loss)) else f"gradient norm {grad_norm}"
        return step, what


def fused_adamw_available(device: torch.device) -> bool:
    """Whether AdamW runs as one fused kernel on ``device`` (CUDA; on CPU the unfused loop keeps results as they
    were)."""
    return device.type == "cuda"


__all__ = ["NonFiniteWatch", "StepResult", "bind_step", "fused_adamw_available", "step_then_undo_unless",
           "step_unless_non_finite"]
