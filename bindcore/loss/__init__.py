"""Symmetric InfoNCE (CLIP / ImageBind) with gathered negatives and a memory-bounded chunked path.

The loss of a batch of ``M`` paired rows ``(a_i, b_i)``, after L2-normalising every row and with logit scale
``s = 1 / temperature``::

    L = ( CE(s · a bᵀ, diag) + CE(s · b aᵀ, diag) ) / 2

where ``CE`` is the mean cross-entropy over rows with the matching row as the target.

Distributed convention (``torch.distributed`` initialised with more than one process, ``gather`` not False).
Rank ``r`` of ``N`` holds ``B_r`` rows (usually the same ``B`` everywhere; an uneven last batch is fine); the global
batch is the concatenation in rank order, ``M = Σ B_r``. Every rank all-gathers ``a`` and ``b`` *with gradients*
(the backward of the gather all-reduces (sums) the gradient of the gathered tensor and keeps the local slice:
open_clip's ``gather_with_grad``) and computes its *share* of the global loss: its own rows of ``a`` against all
``M`` rows of ``b`` plus its own rows of ``b`` against all ``M`` rows of ``a``, each term summed and the total
multiplied by ``N / (2M)`` (with equal batches: the mean over the local ``B`` rows of both directions, halved).
Then:

* The mean of the shares over ranks is exactly the single-process loss ``L`` on the global batch. The returned
  value is ``L`` itself on every rank (an all-reduce of the detached sums, which also yields global accuracies),
  so every rank logs what one process with batch ``M`` would report; its gradient is that of the rank's share.
* With DDP-style gradient averaging (sum over ranks, divided by ``N``), parameter gradients equal the
  single-process gradients of ``L``. Before that averaging, the gradient a rank sees on its own input rows is
  ``N ×`` the single-process gradient on those rows (the sum of every rank's share flows back to them), and a
  replicated parameter such as a learnable temperature gets only its own share's gradient: DDP's average makes
  both right. If you average gradients yourself, divide the all-reduced sum by ``N``, as DDP does.
* Inputs that do not require grad (e.g. a frozen anchor's embeddings) are gathered without autograd. Every rank
  must make the call (with the same ``requires_grad`` on ``a`` and ``b`` everywhere and a non-empty batch):
  the collectives otherwise wait for each other until the process group's timeout.
* Rank sizes: by default each call all-gathers every rank's row count first, which reads it to the host (a
  device sync on CUDA, before the loss and backward are queued). A caller whose ranks always pass the same number
  of rows in a call (the trainer's batches do, by construction) passes ``equal_batches=True``: the sizes are then
  ``(B,) * N`` without a collective. Uneven rows under ``equal_batches=True`` are the caller's bug; the gathers
  would then fail or hang, so leave it False where a rank's share can differ.

The chunked path (``chunk_size``) never materialises the full logit matrix: see :class:`_ChunkedSymmetricCE`
and :class:`_ChunkedRowCE`. It gives the same value and gradients as the plain path, also when distributed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bindcore.errors import ConfigError
from bindcore.loss.chunked import accumulation_dtype, chunked_local_terms

__all__ = ["InfoNCE", "InfoNCEOutput", "info_nce", "info_nce_with_stats"]

TemperatureLike = float | Tensor


@dataclass(frozen=True)
class InfoNCEOutput:
    """Result of :class:`InfoNCE`: the differentiable loss and detached diagnostics.

    ``accuracy_a2b`` is the fraction of rows of ``a`` whose highest logit is their own pair among all rows of
    ``b``; ``accuracy_b2a`` the same the other way round. Distributed, both are over the global batch, and
    ``loss`` is the global loss (see the module docstring). ``temperature`` is ``1 / logit scale``
    as used for this batch (after clamping).
    """

    loss: Tensor
    accuracy_a2b: Tensor
    accuracy_b2a: Tensor
    temperature: Tensor
    logit_scale: Tensor


# --------------------------------------------------------------------------------------------------- validation


def _validate_pair(a: Tensor, b: Tensor) -> None:
    for name, t in (("a", a), ("b", b)):
        if not isinstance(t, Tensor):
            raise ValueError(f"info_nce: {name} must be a torch.Tensor of shape (batch, dim), got {type(t).__name__}")
        if t.ndim != 2:
            raise ValueError(
                f"info_nce: {name} must be 2-D (batch, dim), got shape {tuple(t.shape)} "
                "(flatten extra dimensions or pool clips first)"
            )
        if not t.is_floating_point():
            raise ValueError(f"info_nce: {name} must be a floating-point tensor, got dtype {t.dtype}")
    if a.shape != b.shape:
        raise ValueError(
            f"info_nce: a and b must have the same shape (row i of a pairs with row i of b), "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[0] < 1:
        raise ValueError("info_nce: the batch is empty; it needs at least one pair of rows")
    if a.shape[1] < 1:
        raise ValueError("info_nce: the embedding dimension is 0; rows need at least one feature")
    if a.dtype != b.dtype:
        raise ValueError(f"info_nce: a is {a.dtype} and b is {b.dtype}; cast both to one dtype")
    if a.device != b.device:
        raise ValueError(f"info_nce: a is on {a.device} and b on {b.device}; move both to one device")


def _validate_temperature(temperature: TemperatureLike, name: str = "temperature") -> None:
    if isinstance(temperature, Tensor):
        if temperature.numel() != 1:
            raise ConfigError(
                f"info_nce: {name} must be a scalar (float or 0-d tensor), got shape {tuple(temperature.shape)}"
            )
        value = float(temperature.detach())  # one host sync per call: cheap next to the matmuls
    elif isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        value = float(temperature)
    else:
        raise ConfigError(f"info_nce: {name} must be a positive float or 0-d tensor, got {temperature!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"info_nce: {name} must be finite and > 0 (temperature e.g. 0.07), got {value}")


def _validate_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is None:
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"info_nce: chunk_size must be a positive int or None (no chunking), got {chunk_size!r}")


# -------------------------------------------------------------------------------------------------- distributed


def _distributed_initialised() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _resolve_gather(gather: bool | None) -> int:
    """The number of ranks to gather over: 1 means 'compute locally'."""
    if gather is not None and not isinstance(gather, bool):
        raise ConfigError(f"info_nce: gather must be None (auto), True or False, got {gather!r}")
    if gather is True and not _distributed_initialised():
        raise ConfigError(
            "info_nce: gather=True but torch.distributed is not initialised "
            "(call torch.distributed.init_process_group first, or leave gather=None)"
        )
    if gather is False or not _distributed_initialised():
        return 1
    return torch.distributed.get_world_size()


def _batch_sizes_of_all_ranks(rows: int, device: torch.device, equal_batches: bool = False) -> tuple[int, ...]:
    """Every rank's batch size: ``(rows,) * N`` when the caller vouches that ranks pass equal batches (no
    collective, no host sync), otherwise one tiny all-gather, so uneven last batches are handled, not hung on."""
    if equal_batches:
        return (rows,) * torch.distributed.get_world_size()
    local = torch.tensor([rows], dtype=torch.long, device=device)
    parts = [torch.empty_like(local) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, local)
    return tuple(int(part.item()) for part in parts)


def _all_gather_rows(x: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """Concatenate every rank's rows in rank order (padding to the largest batch for the collective)."""
    largest = max(sizes)
    padded = x if x.shape[0] == largest else torch.cat([x, x.new_zeros(largest - x.shape[0], *x.shape[1:])])
    parts = [torch.empty_like(padded) for _ in sizes]
    torch.distributed.all_gather(parts, padded.contiguous())
    return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)], dim=0)


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather rows from every rank; backward sums the gathered gradient over ranks and keeps the local slice.

    This is open_clip's ``gather_with_grad``: every rank's loss depends on every rank's rows, and the sum over
    ranks of those dependencies is what flows back into the local rows.
    """

    @staticmethod
    def forward(ctx, x: Tensor, sizes: tuple[int, ...]) -> Tensor:  # type: ignore[override]
        rank = torch.distributed.get_rank()
        ctx.start, ctx.stop = sum(sizes[:rank]), sum(sizes[: rank + 1])
        return _all_gather_rows(x, sizes)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        grad = grad.contiguous().clone()
        torch.distributed.all_reduce(grad, op=torch.distributed.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None


def _gather_rows(x: Tensor, sizes: tuple[int, ...]) -> Tensor:
    # Rows that need no gradient (a frozen anchor's embeddings) skip the backward all-reduce altogether.
    return _AllGatherWithGrad.apply(x, sizes) if x.requires_grad else _all_gather_rows(x, sizes)


# ---------------------------------------------------------------------------------------------------- plain path


def _plain_local_terms(
    a_local: Tensor, b_local: Tensor, a_all: Tensor, b_all: Tensor, scale: Tensor, offset: int
) -> tuple[Tensor, Tensor, Tensor]:
    """(summed loss terms of both directions, #correct a→b, #correct b→a) of the local rows, with full logits."""
    rows = a_local.shape[0]
    targets = torch.arange(offset, offset + rows, device=a_local.device)
    # Scaling the (batch, dim) operand rather than the (batch, batch) product keeps autograd from saving an extra
    # full-size matrix for the temperature's gradient.
    logits_ab = (scale * a_local) @ b_all.T
    if a_local is a_all and b_local is b_all:
        logits_ba = logits_ab.T  # one matrix serves both directions when nothing was gathered
    else:
        logits_ba = (scale * b_local) @ a_all.T
    loss_sum = F.cross_entropy(logits_ab, targets, reduction="sum") + F.cross_entropy(
        logits_ba, targets, reduction="sum"
    )
    with torch.no_grad():
        correct_ab = (logits_ab.argmax(dim=1) == targets).sum()
        correct_ba = (logits_ba.argmax(dim=1) == targets).sum()
    return loss_sum, correct_ab, correct_ba


# ---------------------------------------------------------------------------------------------------- public API


def _logit_scale_tensor(a: Tensor, temperature: TemperatureLike | None, logit_scale: Tensor | None) -> Tensor:
    if (temperature is None) == (logit_scale is None):
        raise ConfigError("info_nce: pass exactly one of temperature or logit_scale")
    if logit_scale is not None:
        _validate_temperature(logit_scale, name="logit_scale")  # same rules: a finite positive scalar
        return logit_scale.reshape(()).to(device=a.device)
    _validate_temperature(temperature)
    if isinstance(temperature, Tensor):
        return 1.0 / temperature.reshape(()).to(device=a.device)
    # float32 at least, so that 1/τ is not rounded to bf16/fp16 precision
    dtype = torch.promote_types(a.dtype, torch.float32)
    return torch.tensor(1.0 / float(temperature), device=a.device, dtype=dtype)


def info_nce_with_stats(
    a: Tensor,
    b: Tensor,
    temperature: TemperatureLike | None = None,
    *,
    logit_scale: Tensor | None = None,
    chunk_size: int | None = None,
    gather: bool | None = None,
    equal_batches: bool = False,
) -> InfoNCEOutput:
    """:func:`info_nce` plus detached accuracies; pass either ``temperature`` or ``logit_scale`` (= 1/τ)."""
    _validate_pair(a, b)
    _validate_chunk_size(chunk_size)
    return _info_nce_at_scale(a, b, _logit_scale_tensor(a, temperature, logit_scale), chunk_size, gather,
                              equal_batches)


def _info_nce_at_scale(a: Tensor, b: Tensor, scale: Tensor, chunk_size: int | None,
                       gather: bool | None, equal_batches: bool = False) -> InfoNCEOutput:
    """:func:`info_nce_with_stats` once its arguments are checked (``scale`` a 0-d tensor on ``a``'s device)."""
    world = _resolve_gather(gather)

    a_local = F.normalize(a, dim=-1)
    b_local = F.normalize(b, dim=-1)
    if world > 1:
        sizes = _batch_sizes_of_all_ranks(a_local.shape[0], a_local.device, equal_batches)
        a_all, b_all = _gather_rows(a_local, sizes), _gather_rows(b_local, sizes)
        offset = sum(sizes[: torch.distributed.get_rank()])
    else:
        a_all, b_all, offset = a_local, b_local, 0
    total_rows = a_all.shape[0]

    if chunk_size is None:
        loss_sum, correct_ab, correct_ba = _plain_local_terms(a_local, b_local, a_all, b_all, scale, offset)
    else:
        loss_sum, correct_ab, correct_ba = chunked_local_terms(
            a_local, b_local, a_all, b_all, scale, offset, chunk_size
        )

    if world > 1:
        # This rank's share, scaled so that the mean over ranks of the shares (what DDP's gradient average
        # differentiates) is the global loss, also when batch sizes differ between ranks.
        local_loss = loss_sum * (world / (2 * total_rows))
        stats = torch.stack([loss_sum.detach(), correct_ab, correct_ba]).to(accumulation_dtype(loss_sum.dtype))
        torch.distributed.all_reduce(stats, op=torch.distributed.ReduceOp.SUM)
        global_loss = (stats[0] / (2 * total_rows)).to(local_loss.dtype)
        loss = local_loss + (global_loss - local_loss.detach())  # the global value, the local share's gradient
        correct_ab, correct_ba = stats[1], stats[2]
    else:
        loss = loss_sum / (2 * total_rows)
    scale_detached = scale.detach()
    return InfoNCEOutput(
        loss=loss,
        accuracy_a2b=correct_ab.float() / total_rows,
        accuracy_b2a=correct_ba.float() / total_rows,
        temperature=1.0 / scale_detached,
        logit_scale=scale_detached,
    )


def info_nce(
    a: Tensor,
    b: Tensor,
    temperature: TemperatureLike,
    *,
    chunk_size: int | None = None,
    gather: bool | None = None,
    equal_batches: bool = False,
) -> Tensor:
    """Symmetric InfoNCE of paired rows ``a[i] ↔ b[i]`` (rows are L2-normalised here).

    Args:
        a, b: ``(batch, dim)`` floating tensors of the same shape; row ``i`` of ``a`` pairs with row ``i`` of ``b``.
        temperature: ``τ > 0``, a float or a 0-d tensor (differentiable); logits are ``cos / τ``.
        chunk_size: if set, compute the loss in row blocks of this many rows: the full ``batch × batch`` logit
            matrix never exists, only a few ``chunk_size × global batch`` temporaries of one block at a time
            (recomputed in backward). Same value and gradients as the plain path; about 4/3 of its matmul work.
        gather: ``None`` gathers negatives from every rank when ``torch.distributed`` is initialised with more
            than one process; ``False`` never gathers; ``True`` requires an initialised process group.
        equal_batches: every rank passes the same number of rows in this call; skips the all-gather of the
            ranks' row counts and its host sync (see the module docstring).

    Returns:
        A 0-d tensor. Distributed: the single-process loss of the global batch on every rank, with the gradient
        of this rank's share (see the module docstring for the exact convention).
    """
    return info_nce_with_stats(a, b, temperature, chunk_size=chunk_size, gather=gather,
                               equal_batches=equal_batches).loss


class InfoNCE(nn.Module):
    """Symmetric InfoNCE with a fixed or learnable temperature.

    A learnable temperature is stored as ``log_logit_scale = log(1/τ)`` (a parameter; a buffer when fixed, like
    ImageBind's ``LearnableLogitScaling``) and the scale is clamped to ``max_logit_scale`` in forward (CLIP: 100,
    i.e. τ ≥ 0.01). ``chunk_size``, ``gather`` and ``equal_batches`` are :func:`info_nce`'s. Forward returns an
    :class:`InfoNCEOutput`.
    """

    def __init__(
        self,
        temperature: float = 0.07,
        *,
        learnable: bool = False,
        max_logit_scale: float = 100.0,
        chunk_size: int | None = None,
        gather: bool | None = None,
        equal_batches: bool = False,
    ) -> None:
        super().__init__()
        _validate_temperature(temperature)
        _validate_chunk_size(chunk_size)
        if not (math.isfinite(max_logit_scale) and max_logit_scale > 0):
            raise ConfigError(f"InfoNCE: max_logit_scale must be finite and > 0, got {max_logit_scale}")
        if 1.0 / temperature > max_logit_scale * (1 + 1e-9):
            raise ConfigError(
                f"InfoNCE: temperature {temperature} is below the clamp 1/max_logit_scale = {1 / max_logit_scale:g}; "
                "raise the temperature or max_logit_scale"
            )
        if gather is not None and not isinstance(gather, bool):
            raise ConfigError(f"InfoNCE: gather must be None, True or False, got {gather!r}")
        self.learnable = bool(learnable)
        self.max_logit_scale = float(max_logit_scale)
        self.chunk_size = chunk_size
        self.gather = gather
        self.equal_batches = bool(equal_batches)
        init = torch.tensor(math.log(1.0 / temperature), dtype=torch.float32)
        if self.learnable:
            self.log_logit_scale = nn.Parameter(init)
        else:
            self.register_buffer("log_logit_scale", init)

    def logit_scale(self) -> Tensor:
        """``min(exp(log_logit_scale), max_logit_scale)``: differentiable below the clamp."""
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale)

    @property
    def temperature(self) -> float:
        """The current temperature ``1 / logit_scale`` as a float (after clamping)."""
        return 1.0 / float(self.logit_scale().detach())

    def forward(self, a: Tensor, b: Tensor) -> InfoNCEOutput:
        # The clamped scale needs no check, and checking it would read it to the host every step.
        _validate_pair(a, b)
        scale = self.logit_scale().reshape(()).to(device=a.device)
        return _info_nce_at_scale(a, b, scale, self.chunk_size, self.gather, self.equal_batches)

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature:.4g}, learnable={self.learnable}, "
            f"max_logit_scale={self.max_logit_scale:g}, chunk_size={self.chunk_size}, gather={self.gather}, "
            f"equal_batches={self.equal_batches}"
        )
