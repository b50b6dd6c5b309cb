"""The chunked path of :func:`bindcore.loss.info_nce`: symmetric cross-entropy over ``a bᵀ`` in row blocks, never
materialising the full logit matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor

#
# Both Functions below keep only O(batch) statistics (log-sum-exps) between forward and backward and recompute one
# block of ``chunk × M`` logits at a time in backward, so peak memory is a few blocks instead of the M × M matrix.
# Statistics are accumulated in float32 at least (float64 stays float64); matmuls run in the inputs' dtype.


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


class _ChunkedSymmetricCE(torch.autograd.Function):
    """Single process: ``Σ_i (rowLSE_i - s·a_i·b_i) + Σ_j (colLSE_j - s·a_j·b_j)`` over ``a bᵀ`` in row blocks.

    Each row block of logits gives its rows' log-sum-exp (a→b) directly and updates a running (online) column
    log-sum-exp (b→a), so every logit is computed once in forward and once in backward. Also returns the numbers
    of rows / columns whose argmax is their own pair (no gradient).
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, scale: Tensor, chunk_size: int):  # type: ignore[override]
        rows, acc = a.shape[0], accumulation_dtype(a.dtype)
        scale_acc = scale.detach().to(acc)
        row_lse = torch.empty(rows, dtype=acc, device=a.device)
        diag = torch.empty(rows, dtype=acc, device=a.device)
        col_max = torch.full((rows,), -math.inf, dtype=acc, device=a.device)
        col_sum = torch.zeros(rows, dtype=acc, device=a.device)
        col_best = torch.full((rows,), -math.inf, dtype=acc, device=a.device)
        col_best_row = torch.zeros(rows, dtype=torch.long, device=a.device)
        row_correct = torch.zeros((), dtype=torch.long, device=a.device)
        for start in range(0, rows, chunk_size):
            stop = min(start + chunk_size, rows)
            local = torch.arange(stop - start, device=a.device)
            logits = (a[start:stop] @ b.T).to(acc).mul_(scale_acc)
            row_lse[start:stop] = torch.logsumexp(logits, dim=1)
            diag[start:stop] = logits[local, local + start]
            row_correct += (logits.argmax(dim=1) == local + start).sum()
            block_best, block_best_row = logits.max(dim=0)
            better = block_best > col_best  # strict: the earliest row wins ties, as argmax over the full column
            col_best = torch.where(better, block_best, col_best)
            col_best_row = torch.where(better, block_best_row + start, col_best_row)
            new_max = torch.maximum(col_max, block_best)
            # exp(-inf - -inf) would be NaN on the first block; the running sum is 0 there anyway.
            rescale = torch.where(torch.isinf(col_max), torch.zeros_like(col_max), (col_max - new_max).exp())
            col_sum = col_sum * rescale + logits.sub_(new_max).exp_().sum(dim=0)
            col_max = new_max
        col_lse = col_max + col_sum.log()
        col_correct = (col_best_row == torch.arange(rows, device=a.device)).sum()
        ctx.save_for_backward(a, b, scale, row_lse, col_lse)
        ctx.chunk_size = chunk_size
        ctx.mark_non_differentiable(row_correct, col_correct)
        loss_sum = (row_lse - diag).sum() + (col_lse - diag).sum()
        return loss_sum.to(a.dtype), row_correct, col_correct

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss: Tensor, _row: Tensor, _col: Tensor):  # type: ignore[override]
        a, b, scale, row_lse, col_lse = ctx.saved_tensors
        rows, acc = a.shape[0], row_lse.dtype
        scale_acc, g = scale.detach().to(acc), grad_loss.to(acc)
        need_a, need_b, need_scale = ctx.needs_input_grad[:3]
        grad_a = torch.empty_like(a) if need_a else None
        grad_b = torch.zeros_like(b, dtype=acc) if need_b else None
        grad_scale = torch.zeros((), dtype=acc, device=a.device)
        for start in range(0, rows, ctx.chunk_size):
            stop = min(start + ctx.chunk_size, rows)
            local = torch.arange(stop - start, device=a.device)
            raw = (a[start:stop] @ b.T).to(acc)
            logits = raw * scale_acc
            # d/dlogits of (rowLSE + colLSE - 2·diag): row softmax + column softmax - 2 on the pair.
            grad_logits = (logits - row_lse[start:stop, None]).exp_()
            grad_logits += logits.sub_(col_lse[None, :]).exp_()
            del logits
            grad_logits[local, local + start] -= 2
            grad_logits *= g
            if need_scale:
                grad_scale += torch.dot(grad_logits.view(-1), raw.view(-1))
            del raw
            grad_logits *= scale_acc
            grad_logits = grad_logits.to(a.dtype)
            if need_a:
                grad_a[start:stop] = grad_logits @ b
            if need_b and grad_b.dtype == a.dtype:
                grad_b.addmm_(grad_logits.T, a[start:stop])  # in place: no extra (M, D) temporary per block
            elif need_b:
                grad_b += (grad_logits.T @ a[start:stop]).to(acc)
        return (
            grad_a,
            grad_b.to(b.dtype) if need_b else None,
            grad_scale.to(scale.dtype) if need_scale else None,
            None,
        )


class _ChunkedRowCE(torch.autograd.Function):
    """Gathered case: ``Σ_i (LSE_j(s·q_i·k_j) - s·q_i·k_{offset+i})`` for local rows ``q`` against all rows ``k``.

    Used once per direction (local a vs all b, local b vs all a), in row blocks of ``q``. Also returns the number
    of rows whose argmax is their own pair (no gradient).
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, scale: Tensor, offset: int, chunk_size: int):  # type: ignore[override]
        rows, acc = q.shape[0], accumulation_dtype(q.dtype)
        scale_acc = scale.detach().to(acc)
        lse = torch.empty(rows, dtype=acc, device=q.device)
        target_logit = torch.empty(rows, dtype=acc, device=q.device)
        correct = torch.zeros((), dtype=torch.long, device=q.device)
        for start in range(0, rows, chunk_size):
            stop = min(start + chunk_size, rows)
            local = torch.arange(stop - start, device=q.device)
            logits = (q[start:stop] @ k.T).to(acc).mul_(scale_acc)
            lse[start:stop] = torch.logsumexp(logits, dim=1)
            target_logit[start:stop] = logits[local, local + offset + start]
            correct += (logits.argmax(dim=1) == local + offset + start).sum()
        ctx.save_for_backward(q, k, scale, lse)
        ctx.offset, ctx.chunk_size = offset, chunk_size
        ctx.mark_non_differentiable(correct)
        return (lse - target_logit).sum().to(q.dtype), correct

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss: Tensor, _correct: Tensor):  # type: ignore[override]
        q, k, scale, lse = ctx.saved_tensors
        rows, acc, offset = q.shape[0], lse.dtype, ctx.offset
        scale_acc, g = scale.detach().to(acc), grad_loss.to(acc)
        need_q, need_k, need_scale = ctx.needs_input_grad[:3]
        grad_q = torch.empty_like(q) if need_q else None
        grad_k = torch.zeros_like(k, dtype=acc) if need_k else None
        grad_scale = torch.zeros((), dtype=acc, device=q.device)
        for start in range(0, rows, ctx.chunk_size):
            stop = min(start + ctx.chunk_size, rows)
            local = torch.arange(stop - start, device=q.device)
            raw = (q[start:stop] @ k.T).to(acc)
            grad_logits = (raw * scale_acc).sub_(lse[start:stop, None]).exp_()  # row softmax
            grad_logits[local, local + offset + start] -= 1
            grad_logits *= g
            if need_scale:
                grad_scale += torch.dot(grad_logits.view(-1), raw.view(-1))
            del raw
            grad_logits *= scale_acc
            grad_logits = grad_logits.to(q.dtype)
            if need_q:
                grad_q[start:stop] = grad_logits @ k
            if need_k and grad_k.dtype == q.dtype:
                grad_k.addmm_(grad_logits.T, q[start:stop])  # in place: no extra (M, D) temporary per block
            elif need_k:
                grad_k += (grad_logits.T @ q[start:stop]).to(acc)
        return (
            grad_q,
            grad_k.to(k.dtype) if need_k else None,
            grad_scale.to(scale.dtype) if need_scale else None,
            None,
            None,
        )


def chunked_local_terms(
    a_local: Tensor, b_local: Tensor, a_all: Tensor, b_all: Tensor, scale: Tensor, offset: int, chunk_size: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Same as ``bindcore.loss._plain_local_terms``, computed in row blocks of ``chunk_size``."""
    if a_local is a_all and b_local is b_all:
        return _ChunkedSymmetricCE.apply(a_local, b_local, scale, chunk_size)
    sum_ab, correct_ab = _ChunkedRowCE.apply(a_local, b_all, scale, offset, chunk_size)
    sum_ba, correct_ba = _ChunkedRowCE.apply(b_local, a_all, scale, offset, chunk_size)
    return sum_ab + sum_ba, correct_ab, correct_ba
