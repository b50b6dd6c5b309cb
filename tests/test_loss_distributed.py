"""InfoNCE on 2 gloo processes (CPU) equals one process on the concatenated batch: loss and DDP-averaged gradients.

One spawn runs every case so the start-up cost (two Python processes importing torch) is paid once.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bindcore.loss import InfoNCE, info_nce, info_nce_with_stats

WORLD = 2
ROWS_PER_RANK = 5  # 5 does not divide by the chunk size 3 below, and the global batch is 10
UNEVEN_ROWS = (6, 4)  # a last batch split unevenly: same global batch, different shares
DIM = 4
TEMPERATURE = 0.2
CHUNK = 3


def _global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    a = torch.randn(WORLD * ROWS_PER_RANK, DIM, generator=g, dtype=torch.float64)
    b = a + 0.7 * torch.randn(WORLD * ROWS_PER_RANK, DIM, generator=g, dtype=torch.float64)
    x = torch.randn(WORLD * ROWS_PER_RANK, 3, generator=g, dtype=torch.float64)  # inputs of a tiny encoder
    return a, b, x


def _encoder() -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(3, DIM).double()


def _case(a: torch.Tensor, b: torch.Tensor, chunk_size: int | None, frozen_b: bool = False,
          equal_batches: bool = False) -> dict[str, torch.Tensor]:
    """Loss and gradients of a, b and the temperature for one batch (whatever this process holds), and how many
    all-gathers of integer tensors (the ranks' row counts) the loss made."""
    a = a.clone().requires_grad_()
    b = b.clone().requires_grad_(not frozen_b)
    tau = torch.tensor(TEMPERATURE, dtype=torch.float64, requires_grad=True)
    with _counting_size_gathers() as size_gathers:
        out = info_nce_with_stats(a, b, tau, chunk_size=chunk_size, equal_batches=equal_batches)
    out.loss.backward()
    result = {"loss": out.loss.detach(), "grad_a": a.grad, "grad_tau": tau.grad, "acc_ab": out.accuracy_a2b,
              "size_gathers": torch.tensor(len(size_gathers))}
    if not frozen_b:
        result["grad_b"] = b.grad
    return result


@contextmanager
def _counting_size_gathers() -> Iterator[list[torch.Size]]:
    """Record the all-gathers of integer tensors made inside the block (the loss gathers rows as floats)."""
    calls: list[torch.Size] = []
    if not dist.is_initialized():
        yield calls
        return
    original = dist.all_gather

    def counting(parts: list[torch.Tensor], tensor: torch.Tensor, *args: object, **kwargs: object) -> object:
        if not tensor.is_floating_point():
            calls.append(tensor.shape)
        return original(parts, tensor, *args, **kwargs)

    dist.all_gather = counting
    try:
        yield calls
    finally:
        dist.all_gather = original


def _module_case(a: torch.Tensor, b: torch.Tensor, chunk_size: int | None) -> dict[str, torch.Tensor]:
    loss_fn = InfoNCE(TEMPERATURE, learnable=True, chunk_size=chunk_size).double()
    out = loss_fn(a, b)
    out.loss.backward()
    return {"loss": out.loss.detach(), "grad_log_scale": loss_fn.log_logit_scale.grad}


def _ddp_case(x: torch.Tensor, b: torch.Tensor, chunk_size: int | None) -> dict[str, torch.Tensor]:
    """A tiny trainable encoder against frozen targets; under DDP its gradients are averaged over ranks."""
    encoder = _encoder()
    if dist.is_initialized():
        encoder = torch.nn.parallel.DistributedDataParallel(encoder)
    loss = info_nce(encoder(x), b, TEMPERATURE, chunk_size=chunk_size)
    loss.backward()
    module = encoder.module if isinstance(encoder, torch.nn.parallel.DistributedDataParallel) else encoder
    return {"loss": loss.detach(), "grad_weight": module.weight.grad, "grad_bias": module.bias.grad}


def _all_cases(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    results = {}
    for chunk_size in (None, CHUNK):
        results[f"both_{chunk_size}"] = _case(a, b, chunk_size)
        results[f"frozen_{chunk_size}"] = _case(a, b, chunk_size, frozen_b=True)
        results[f"equal_{chunk_size}"] = _case(a, b, chunk_size, equal_batches=True)
        results[f"module_{chunk_size}"] = _module_case(a, b, chunk_size)
        results[f"ddp_{chunk_size}"] = _ddp_case(x, b, chunk_size)
    return results


def _worker(rank: int, store_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store_path}",
        rank=rank,
        world_size=WORLD,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        a, b, x = _global_batch()
        rows = slice(rank * ROWS_PER_RANK, (rank + 1) * ROWS_PER_RANK)
        results = _all_cases(a[rows], b[rows], x[rows])
        local_only = a[rows].clone(), b[rows].clone()
        uneven = slice(sum(UNEVEN_ROWS[:rank]), sum(UNEVEN_ROWS[: rank + 1]))
        for chunk_size in (None, CHUNK):
            results[f"uneven_{chunk_size}"] = _case(a[uneven], b[uneven], chunk_size)
        results["no_gather"] = {"loss": info_nce(*local_only, TEMPERATURE, gather=False).detach()}
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict[str, torch.Tensor]]]:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    tmp = tmp_path_factory.mktemp("gloo")
    # Spawned children unpickle _worker by this module's name; pytest's importlib mode does not put its root on
    # sys.path, so add it for the duration of the spawn (children inherit the parent's sys.path).
    import_root = str(Path(__file__).resolve().parents[__name__.count(".")])
    sys.path.insert(0, import_root)
    try:
        mp.spawn(_worker, args=(str(tmp / "store"), str(tmp)), nprocs=WORLD, join=True)
    finally:
        sys.path.remove(import_root)
    return [torch.load(Path(tmp) / f"rank{rank}.pt") for rank in range(WORLD)]


@pytest.fixture(scope="module")
def single_process_results() -> dict[str, dict[str, torch.Tensor]]:
    a, b, x = _global_batch()
    return _all_cases(a, b, x)


def _local(t: torch.Tensor, rank: int, sizes: tuple[int, ...] = (ROWS_PER_RANK,) * WORLD) -> torch.Tensor:
    return t[sum(sizes[:rank]) : sum(sizes[: rank + 1])]


@pytest.mark.parametrize("case", ["both_None", "both_3", "frozen_None", "frozen_3", "uneven_None", "uneven_3",
                                  "equal_None", "equal_3"])
def test_loss_and_input_gradients_equal_single_process(
    distributed_results: list, single_process_results: dict, case: str
) -> None:
    want = single_process_results[case.replace("uneven", "both").replace("equal", "both")]
    sizes = UNEVEN_ROWS if case.startswith("uneven") else (ROWS_PER_RANK,) * WORLD
    for rank, per_rank in enumerate(distributed_results):
        got = per_rank[case]
        # Every rank reports the global loss.
        torch.testing.assert_close(got["loss"], want["loss"], rtol=1e-12, atol=1e-12)
        # A rank's own rows get N x the single-process gradient; DDP's average over N ranks divides it back.
        torch.testing.assert_close(got["grad_a"] / WORLD, _local(want["grad_a"], rank, sizes), rtol=1e-10, atol=1e-12)
        if "grad_b" in want:
            want_b = _local(want["grad_b"], rank, sizes)
            torch.testing.assert_close(got["grad_b"] / WORLD, want_b, rtol=1e-10, atol=1e-12)
    # The replicated temperature gets its rank's share; the average over ranks is the single-process gradient.
    mean_grad_tau = sum(r[case]["grad_tau"] for r in distributed_results) / WORLD
    torch.testing.assert_close(mean_grad_tau, want["grad_tau"], rtol=1e-10, atol=1e-12)
    for per_rank in distributed_results:  # accuracy over the global batch, on every rank
        torch.testing.assert_close(per_rank[case]["acc_ab"], want["acc_ab"])


@pytest.mark.parametrize("chunk_size", [None, CHUNK])
def test_learnable_temperature_gradient_averages_to_single_process(
    distributed_results: list, single_process_results: dict, chunk_size: int | None
) -> None:
    case = f"module_{chunk_size}"
    want = single_process_results[case]
    for per_rank in distributed_results:
        torch.testing.assert_close(per_rank[case]["loss"], want["loss"], rtol=1e-12, atol=1e-12)
    mean_grad = sum(r[case]["grad_log_scale"] for r in distributed_results) / WORLD
    torch.testing.assert_close(mean_grad, want["grad_log_scale"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [None, CHUNK])
def test_ddp_encoder_gradients_equal_single_process(
    distributed_results: list, single_process_results: dict, chunk_size: int | None
) -> None:
    case = f"ddp_{chunk_size}"
    want = single_process_results[case]
    for per_rank in distributed_results:
        got = per_rank[case]
        torch.testing.assert_close(got["loss"], want["loss"], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(got["grad_weight"], want["grad_weight"], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(got["grad_bias"], want["grad_bias"], rtol=1e-10, atol=1e-12)


def test_gather_false_computes_the_local_batch_only(distributed_results: list) -> None:
    a, b, _ = _global_batch()
    for rank, per_rank in enumerate(distributed_results):
        want = info_nce(_local(a, rank), _local(b, rank), TEMPERATURE)
        torch.testing.assert_close(per_rank["no_gather"]["loss"], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [None, CHUNK])
def test_equal_batches_skips_the_rank_size_gather(distributed_results: list, chunk_size: int | None) -> None:
    """The default path gathers the ranks' row counts (read to the host: a device sync on CUDA); with
    ``equal_batches=True`` (the trainer's setting) no such gather happens, and the loss is the same (above)."""
    for per_rank in distributed_results:
        assert int(per_rank[f"both_{chunk_size}"]["size_gathers"]) == 1
        assert int(per_rank[f"equal_{chunk_size}"]["size_gathers"]) == 0
        torch.testing.assert_close(per_rank[f"equal_{chunk_size}"]["loss"], per_rank[f"both_{chunk_size}"]["loss"],
                                   rtol=0, atol=0)


def test_the_trainer_loss_vouches_for_equal_batches() -> None:
    from bindcore.train.trainer import BindHead

    head = BindHead(torch.nn.Linear(3, DIM), TEMPERATURE, learnable=False)
    assert head.loss.equal_batches is True
    assert InfoNCE(TEMPERATURE).equal_batches is False
