"""The binding step without host syncs (:mod:`bindcore.train.step`): same weights as the step with syncs on CPU,
no sync between log points, non-finite steps skipped on the device, and ``run.compile``."""

from __future__ import annotations

import copy
from contextlib import contextmanager, nullcontext

import pytest
import torch
from torch import nn

from bindcore.errors import NonFiniteError
from bindcore.recipe import validate_recipe
from bindcore.testing.stubs import tiny_recipe
from bindcore.train.checkpoint import list_checkpoints
from bindcore.train.step import NonFiniteWatch, bind_step, step_then_undo_unless
from bindcore.train.trainer import BindHead, train


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 12), nn.GELU(), nn.Linear(12, 8))

    def forward(self, x):
        return nn.functional.normalize(self.net(x), dim=-1)


def _head(seed: int = 0) -> BindHead:
    torch.manual_seed(seed)
    return BindHead(_Encoder(), 0.1, learnable=True)


def _step_with_syncs(head, optimizer, inputs, targets, micro, clip):
    """The trainer's step before this module (``loss.item()`` and ``torch.isfinite`` on the host per micro-step)."""
    optimizer.zero_grad(set_to_none=True)
    loss_total = 0.0
    for x, y in zip(inputs.chunk(micro), targets.chunk(micro), strict=True):
        with torch.autocast("cpu", enabled=False):
            loss = head.loss(head(x).float(), y).loss
        if not torch.isfinite(loss):
            raise NonFiniteError("loss")
        (loss / micro).backward()
        loss_total += loss.item() / micro
    grad_norm = torch.nn.utils.clip_grad_norm_([p for p in head.parameters() if p.requires_grad],
                                               clip if clip else float("inf"))
    if not torch.isfinite(grad_norm):
        raise NonFiniteError("grad")
    optimizer.step()
    return loss_total, float(grad_norm)


def _batches(count: int, size: int = 8):
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(size, 6, generator=generator),
             nn.functional.normalize(torch.randn(size, 8, generator=generator), dim=-1)) for _ in range(count)]


@pytest.mark.parametrize(("micro", "clip"), [(1, 1.0), (2, None), (4, 0.05)])
def test_the_step_gives_the_weights_of_the_step_with_syncs(micro, clip):
    new, old = _head(), _head()
    new_opt = torch.optim.AdamW(new.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.05)
    old_opt = torch.optim.AdamW(old.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.05)
    for inputs, targets in _batches(6):
        result = bind_step(new, new, new_opt, inputs, targets, micro_steps=micro, grad_clip=clip,
                           autocast=lambda: torch.autocast("cpu", enabled=False))
        loss, grad_norm = _step_with_syncs(old, old_opt, inputs, targets, micro, clip)
        assert float(result.loss) == loss and float(result.grad_norm) == grad_norm and bool(result.finite)
    for (name, a), b in zip(new.state_dict().items(), old.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert new_opt.state_dict()["state"].keys() == old_opt.state_dict()["state"].keys()


SYNCS = ("item", "__bool__", "__float__", "__int__", "tolist")


@contextmanager
def _count_syncs(counter: list[str]):
    """Record every Tensor method that hands a value to the host (``.item()``, ``bool(t)``, ``float(t)``, ...)."""
    originals = {name: getattr(torch.Tensor, name) for name in SYNCS}

    def counting(name):
        def method(self, *args, **kwargs):
            counter.append(name)
            return originals[name](self, *args, **kwargs)
        return method

    for name in SYNCS:
        setattr(torch.Tensor, name, counting(name))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)


def test_no_host_sync_in_the_steps_between_log_points():
    head = _head()
    # fused, as on CUDA (the unfused loop reads its CPU-side step count, which on CUDA lives on the host anyway)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, fused=True)
    watch = NonFiniteWatch(torch.device("cpu"))
    syncs: list[str] = []
    with _count_syncs(syncs):
        for step, (inputs, targets) in enumerate(_batches(5)):
            watch.note(step, bind_step(head, head, optimizer, inputs, targets, micro_steps=2, grad_clip=1.0,
                                       autocast=nullcontext))
        assert syncs == []  # five steps of two micro-steps each: nothing read
        assert watch.first() is None
    assert syncs  # the read at the log point is the one sync (so the counter does see them)


def test_no_host_sync_in_the_trainers_loop_between_log_points(stubs, tmp_path, monkeypatch):
    """The whole loop (data loading, the step, the bookkeeping) reads device values only at the read points: every
    ``log_every`` and ``checkpoint_every`` step and the last."""
    import bindcore.train.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "fused_adamw_available", lambda _device: True)  # as on CUDA
    current = [-1]

    def mark(step, batch):
        current[0] = step

    class AtStep(list):
        def append(self, name):
            super().append((current[0], name))

    with _count_syncs(calls := AtStep()):
        train(validate_recipe(tiny_recipe(log_every=8, checkpoint_every=8)), tmp_path / "run", log=lambda _m: None,
              step_hook=mark)
    syncs = [(step, name) for step, name in calls if step >= 0]  # from the first step on
    assert current[0] == 23 and syncs  # 24 steps; the reads do show up
    assert {step for step, _ in syncs} <= {7, 15, 23}  # steps 8, 16 and 24 done: log points


def _state(optimizer: torch.optim.Optimizer, module: nn.Module):
    return copy.deepcopy(module.state_dict()), copy.deepcopy(optimizer.state_dict())


@pytest.mark.parametrize("strategy", ["unfused", "fused", "undo"])
def test_a_non_finite_step_is_skipped_on_the_device(strategy, monkeypatch):
    import bindcore.train.step as step_module

    head = _head()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, fused=(strategy == "fused") or None)
    if strategy == "undo":  # the path of unfused optimisers on a GPU: step, then put everything back on the device
        monkeypatch.setattr(step_module, "step_unless_non_finite", step_module.step_then_undo_unless)
    batches = _batches(3)

    def run(step_batches):
        for inputs, targets in step_batches:
            result = bind_step(head, head, optimizer, inputs, targets, micro_steps=1, grad_clip=1.0,
                               autocast=nullcontext)
        return result

    run(batches[:2])
    weights, state = _state(optimizer, head)
    poisoned = run([(batches[2][0].clone().fill_(float("nan")), batches[2][1])])
    assert not bool(poisoned.finite)
    for key, value in head.state_dict().items():
        assert torch.equal(value, weights[key]), key  # parameters untouched
    after = optimizer.state_dict()["state"]
    for index, entry in state["state"].items():
        for key, value in entry.items():
            assert torch.equal(after[index][key], value), (index, key)  # moments and step count untouched
    assert run([batches[2]]).finite


def test_skipping_the_first_step_leaves_a_fresh_optimiser():
    head, fresh = _head(), _head()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-2)
    for param in head.parameters():
        param.grad = torch.full_like(param, float("inf"))
    step_then_undo_unless(optimizer, torch.tensor(False))  # the first step's state, created and undone
    inputs, targets = _batches(1)[0]
    for module, opt in ((head, optimizer), (fresh, fresh_opt)):
        bind_step(module, module, opt, inputs, targets, micro_steps=1, grad_clip=None, autocast=nullcontext)
    for a, b in zip(head.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)


def test_non_finite_step_named_at_the_next_read_point_before_any_later_checkpoint(stubs, tmp_path):
    out = tmp_path / "run"

    def poison(step, batch):
        if step == 6:
            batch["inputs"].fill_(float("nan"))

    recipe = validate_recipe(tiny_recipe(log_every=100, checkpoint_every=4))  # read at checkpoints only
    with pytest.raises(NonFiniteError, match=r"non-finite loss nan at step 6 \(pair image↔toy[ab], its step") as info:
        train(recipe, out, log=lambda _m: None, step_hook=poison)
    assert "checkpoint-00000004.pt is intact" in str(info.value)
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["checkpoint-00000004.pt"]


def test_run_compile_compiles_the_training_forward(stubs, tmp_path, monkeypatch):
    compiled = []
    real_compile = torch.compile

    def spy(module, **kwargs):
        compiled.append(type(module).__name__)
        return real_compile(module, backend="eager")  # dynamo's graph capture without a C++ toolchain

    monkeypatch.setattr(torch, "compile", spy)
    plain = train(validate_recipe(tiny_recipe()), tmp_path / "plain", log=lambda _m: None)
    assert compiled == []
    with_compile = train(validate_recipe(tiny_recipe(compile=True)), tmp_path / "compiled", log=lambda _m: None)
    assert sorted(compiled) == ["BindHead", "BindHead"]
    for name, loss in plain.final_losses.items():
        assert with_compile.final_losses[name] == pytest.approx(loss, rel=1e-5)


def test_loader_pins_memory_for_cuda_only(stubs, tmp_path):
    import dataclasses

    from bindcore.run_setup import RunSetup
    from bindcore.train.trainer import Trainer

    trainer = Trainer(RunSetup(validate_recipe(tiny_recipe()), tmp_path / "run", log=lambda _m: None))
    assert trainer._loader(0, 4).pin_memory is False
    trainer.ctx = dataclasses.replace(trainer.ctx, device=torch.device("cuda", 0))
    assert trainer._loader(0, 4).pin_memory is True
