"""The binding trainer: a frozen anchor whose image tower gives the targets of every bound modality; each
step trains one (anchor, modality) pair; a schedule mixes modalities in one run.

Resumable bit-for-bit on CPU: the data order is a pure function of (seed, step), augmentation is seeded
per step in the workers, and checkpoints hold weights, optimiser state, temperatures and RNG states.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from bindcore.data.batches import Materialized, StepBatches, preprocess_all, raise_bad_item
from bindcore.data.plan import ModalityPlan, StepPlan, batch_size_problem, seed_of
from bindcore.data.shard import input_preprocessor
from bindcore.data.skips import SKIPPED_FILE, SkippedItems
from bindcore.data.sources import IMAGE_KEY, PairedSource
from bindcore.data.stream import modality_plan
from bindcore.errors import ConfigError, NonFiniteError
from bindcore.io import atomic_file
from bindcore.loss import InfoNCE
from bindcore.recipe import ValidatedRecipe
from bindcore.run_setup import MODALITIES_DIR, RunSetup
from bindcore.train.checkpoint import (
    load_checkpoint,
    newest_good_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from bindcore.train.finetune import param_groups, prepare_modality
from bindcore.train.run_dir import CHECKPOINTS_DIR, claim_run_directory
from bindcore.train.step import NonFiniteWatch, bind_step, fused_adamw_available
from bindcore.train.validation import Validation

METRICS_FIELDS = ("step", "modality", "local_step", "loss", "lr", "temperature", "grad_norm", "samples_per_s",
                  "elapsed_s")


class BindHead(nn.Module):
    """A trainable modality plus its InfoNCE loss (:class:`bindcore.loss.InfoNCE`, fixed or learnable temperature)."""

    def __init__(self, modality: nn.Module, temperature: float, learnable: bool):
        super().__init__()
        self.modality = modality
        # The trainer's batches have the same size on every rank (StepBatches slices the step's indices evenly and
        # replaces bad items instead of dropping them), so no rank-size gather (a host sync) is needed.
        self.loss = InfoNCE(temperature, learnable=learnable, equal_batches=True)

    def temperature(self) -> float:
        return self.loss.temperature

    def forward(self, x: Tensor) -> Tensor:
        return self.modality(x)


def lr_at(settings: Any, plan: ModalityPlan, local_step: int) -> float:
    """Linear warmup over ``warmup_epochs`` then cosine decay to ``min_lr`` over the modality's steps."""
    warmup = int(settings.warmup_epochs * plan.steps_per_epoch)
    if local_step < warmup:
        return settings.lr * (local_step + 1) / warmup
    span = max(1, plan.total_steps - warmup)
    progress = min(1.0, (local_step - warmup) / span)
    return settings.min_lr + (settings.lr - settings.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def enable_grad_checkpointing(module: nn.Module) -> int:
    """Set ``grad_checkpointing`` on every transformer inside ``module``; returns how many."""
    count = 0
    for sub in module.modules():
        if hasattr(sub, "grad_checkpointing"):
            sub.grad_checkpointing = True
            count += 1
    return count


# -- the run ------------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    out: Path
    steps: int
    final_losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class Trainer:
    """Train the bound modalities of a :class:`RunSetup` (build with a recipe and an output directory), then
    :meth:`fit`."""

    def __init__(self, setup: RunSetup, *, resume: bool | str = "auto", overwrite: bool = False,
                 step_hook: Callable[[int, dict[str, Any]], None] | None = None):
        """``resume``: "auto" (the newest intact checkpoint of the run directory, if any), False (start over; earlier
        checkpoints are moved aside) or a checkpoint file. ``overwrite``: replace another recipe's run in ``out``."""
        self.started = time.perf_counter()
        self.setup = setup
        self.recipe = setup.recipe
        self.out = setup.out
        self.ctx = setup.ctx
        self.resume = resume
        self.step_hook = step_hook
        # Before anything is written: one run's outputs never mix with another's.
        self.ctx.run_on_main(lambda: claim_run_directory(self.recipe, self.out, fresh=resume is False,
                                                         overwrite=overwrite, log=self.ctx.log),
                             f"claiming the run directory {self.out}")
        run = self.recipe.run
        self.anchor = setup.anchor
        self.modules = setup.build_modalities()
        self.heads: dict[str, BindHead] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        for name, module in self.modules.items():
            settings = self.recipe.modalities[name].train
            prepare_modality(name, module, self.recipe.modalities[name], run.seed, self.ctx.log)  # init/freeze/lora
            head = BindHead(module, settings.temperature, settings.learnable_temperature).to(self.ctx.device)
            if run.grad_checkpointing:
                enable_grad_checkpointing(head)
            self.heads[name] = head
            self.optimizers[name] = torch.optim.AdamW(param_groups(head, settings.weight_decay),
                                                      lr=settings.lr, betas=settings.betas,
                                                      fused=fused_adamw_available(self.ctx.device) or None)
        self.wrapped: dict[str, nn.Module] = dict(self.heads)
        if self.ctx.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.wrapped = {n: DistributedDataParallel(h, device_ids=ids) for n, h in self.heads.items()}
        if run.compile:  # the training forward only: saving and evaluation use the plain modules
            self.wrapped = {n: torch.compile(w) for n, w in self.wrapped.items()}
        self._build_data()
        self.validation = Validation.for_run(setup, self.modules, self.out / CHECKPOINTS_DIR, self._autocast)

    def _build_data(self) -> None:
        recipe, ctx, setup = self.recipe, self.ctx, self.setup
        workers = recipe.data.workers
        self.sources: dict[str, PairedSource] = {}
        stores: dict[tuple[str, str], Materialized] = {}
        shared: dict[str, Materialized] = {}
        caches: dict[str, Any] = {}
        plans = []
        for name, block in sorted(recipe.modalities.items()):
            source = setup.source(name, self.modules[name])
            self.sources[name] = source
            global_batch = block.train.batch_size
            if global_batch % ctx.world_size:
                raise ConfigError(f"modalities.{name}.train.batch_size {global_batch} is not divisible by the "
                                  f"{ctx.world_size} processes")
            too_large = batch_size_problem(name, global_batch, len(source), f"its {block.data.kind} data")
            if too_large:
                raise ConfigError(too_large)
            plans.append(modality_plan(name, source, block, world_size=ctx.world_size, workers=workers))
            if block.data.kind == "toy":  # small and in memory: render + preprocess once
                started = time.perf_counter()
                stores[(name, name)] = Materialized(
                    preprocess_all(source, name, self.modules[name], workers=workers))
                ctx.log(f"data: {name}: {len(source)} toy scenes rendered and preprocessed in "
                        f"{time.perf_counter() - started:.1f}s")
            if recipe.anchor.cache_embeddings:
                caches[name] = self._anchor_cache(name, source)
            elif block.data.kind == "toy":
                key = source.fingerprint(IMAGE_KEY)
                if key not in shared:
                    shared[key] = Materialized(preprocess_all(source, IMAGE_KEY, setup.vision, workers=workers))
                stores[(name, IMAGE_KEY)] = shared[key]
        self.plan = StepPlan(plans, recipe.run.seed, recipe.run.schedule)
        augmentations = {n: b.train.augmentation for n, b in recipe.modalities.items()
                         if any(v for v in b.train.augmentation.model_dump().values())}
        preprocessors = {n: input_preprocessor(self.sources[n], m) for n, m in self.modules.items()}
        self.batches = StepBatches(self.plan, self.sources, preprocessors, image_preprocessor=setup.vision,
                                   augmentations=augmentations, seed=recipe.run.seed, stores=stores,
                                   anchor_caches=caches, rank=ctx.rank, world_size=ctx.world_size,
                                   on_error={n: b.data.on_error for n, b in recipe.modalities.items()})

    def _anchor_cache(self, name: str, source: PairedSource) -> Any:
        from bindcore.train.views_cache import build_run_cache

        setup = self.setup
        started = time.perf_counter()

        def build(log: Callable[[str], None]) -> Any:
            return build_run_cache(self.recipe, name, self.anchor, source, setup.vision, setup.anchor_cache_dir(),
                                   device=self.ctx.device, log=log)

        # Rank 0 embeds the images; the others then find the cache fresh (or, without a shared filesystem, build
        # their own copy).
        self.ctx.run_on_main(lambda: build(self.ctx.log), "building the anchor cache")
        cache = build(lambda _m: None)
        self.ctx.log(f"anchor cache: {cache.path.name} ready ({len(cache)} rows, {time.perf_counter() - started:.1f}s)")
        return cache

    # -- state --------------------------------------------------------------------------------------
    def state(self, step: int) -> dict[str, Any]:
        return {"step": step, "recipe": self.recipe.fingerprint(),
                "heads": {n: h.state_dict() for n, h in self.heads.items()},
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                "rng": rng_state(), "last_loss": {n: float(v) for n, v in self.last_loss.items()},
                "reading_layout": {n: p.reading_layout() for n, p in self.plan.plans.items()}}

    def restore(self, payload: dict[str, Any]) -> int:
        if payload.get("recipe") != self.recipe.fingerprint():
            raise ConfigError("the checkpoint was written by a different recipe; use another --out or --no-resume")
        for name, head in self.heads.items():
            head.load_state_dict(payload["heads"][name])
            self.optimizers[name].load_state_dict(payload["optimizers"][name])
        set_rng_state(payload["rng"])
        self.last_loss = dict(payload.get("last_loss", {}))
        self._compare_reading_layout(payload.get("reading_layout") or {})
        return int(payload["step"])

    def _compare_reading_layout(self, saved: dict[str, dict[str, int]]) -> None:
        """Say so where a streamed modality resumes with other readers than its checkpoint's: the run goes on, but
        not with the batches an uninterrupted run would have had."""
        for name, plan in sorted(self.plan.plans.items()):
            then, now = saved.get(name), plan.reading_layout()
            if then is None or then == now:
                continue
            lanes = then.get("lanes", 1)
            workers = f"data.workers: {lanes}" if lanes > 1 else "data.workers: 0 or 1"
            self.ctx.log(f"warning: {name}'s streamed shards were read by {then.get('processes')} process(es) × "
                         f"{lanes} lane(s) before this resume and now by {now['processes']} × {now['lanes']}: the "
                         f"epoch's sample order changes, so from here the batches differ from an uninterrupted "
                         f"run's (in the epoch under way some samples repeat and others are not read). To replay "
                         f"exactly, resume with {then.get('processes')} process(es) and {workers}")

    # -- training -----------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        run, ctx = self.recipe.run, self.ctx
        ckpt_dir = self.out / CHECKPOINTS_DIR
        self.last_loss: dict[str, float | Tensor] = {}  # device scalars until read
        torch.manual_seed(seed_of("train", run.seed) % 2**63)
        start = 0
        resume_from: Path | None = None
        if isinstance(self.resume, str) and self.resume != "auto":
            resume_from = Path(self.resume)  # the one the user named: no fallback to another
            payload = load_checkpoint(resume_from)
        elif self.resume:
            found = newest_good_checkpoint(ckpt_dir, warn=ctx.log, set_aside=ctx.is_main)
            resume_from, payload = found if found is not None else (None, None)
        if resume_from is not None:
            start = self.restore(payload)
            ctx.log(f"resuming from {resume_from} (step {start}/{len(self.plan)})")
        total = len(self.plan)
        self._open_logs(start)
        last_good = resume_from
        if start < total:
            last_good = self._loop(start, total, ckpt_dir, last_good)
        if ctx.is_main:
            self._save_modalities()
        self._close_logs()
        losses = {n: float(v) for n, v in self.last_loss.items()}
        result = TrainResult(self.out, total, losses, seconds=time.perf_counter() - self.started)
        return result

    def _loader(self, start: int, total: int) -> torch.utils.data.DataLoader:
        workers = self.recipe.data.workers
        return torch.utils.data.DataLoader(
            self.batches, batch_size=None, sampler=range(start, total), num_workers=workers,
            prefetch_factor=self.recipe.data.prefetch if workers else None,
            pin_memory=self.ctx.device.type == "cuda",  # so the non_blocking copies overlap the step
            generator=torch.Generator(),  # never draws from the global RNG: resume stays bit-identical
        )

    def _targets(self, batch: dict[str, Any]) -> Tensor:
        if "anchor" in batch:
            return batch["anchor"].to(self.ctx.device, non_blocking=True).float()
        images = batch["images"].to(self.ctx.device, non_blocking=True)
        with self._autocast():
            return self.anchor.encode_image(images).float()

    def _autocast(self) -> Any:
        if self.ctx.autocast_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.ctx.device.type, dtype=self.ctx.autocast_dtype)

    def _loop(self, start: int, total: int, ckpt_dir: Path, last_good: Path | None) -> Path | None:
        from tqdm import tqdm

        run, ctx = self.recipe.run, self.ctx
        for head in self.heads.values():
            head.train()
        import sys

        bar = tqdm(total=total, initial=start, desc="bind", disable=not (run.progress and ctx.is_main),
                   dynamic_ncols=True, unit="step", mininterval=0.5 if sys.stderr.isatty() else 15)
        window_samples, window_start = 0, time.perf_counter()
        throughput = 0.0
        watch = NonFiniteWatch(ctx.device)
        for batch in self._loader(start, total):
            step, name, local_step = batch["step"], batch["modality"], batch["local_step"]
            self._check_items(batch)
            if self.step_hook is not None:
                self.step_hook(step, batch)
            settings = self.recipe.modalities[name].train
            plan = self.plan.plans[name]
            head, wrapped, optimizer = self.heads[name], self.wrapped[name], self.optimizers[name]
            lr = lr_at(settings, plan, local_step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs = batch["inputs"].to(ctx.device, non_blocking=True)
            result = bind_step(head, wrapped, optimizer, inputs, self._targets(batch),
                               micro_steps=settings.grad_accumulation, grad_clip=settings.grad_clip,
                               autocast=self._autocast)
            watch.note(step, result)  # read at log points and checkpoints only: no host sync per step
            self.last_loss[name] = result.loss
            window_samples += settings.batch_size
            done = step + 1
            read_now = done % run.log_every == 0 or done % run.checkpoint_every == 0 or done == total
            if read_now:
                self._exchange_skips()
                self._stop_if_non_finite(watch, last_good)
            if ctx.is_main:
                bar.update(1)
                if read_now:
                    elapsed = time.perf_counter() - window_start
                    throughput = window_samples / elapsed if elapsed > 0 else throughput
                    window_samples, window_start = 0, time.perf_counter()
                    bar.set_postfix({f"loss_{n}": f"{float(v):.3f}" for n, v in sorted(self.last_loss.items())}
                                    | {"samples/s": f"{throughput:.0f}"}, refresh=False)
                if done % run.log_every == 0 or done == total:
                    self._log_metrics(done, name, local_step, float(result.loss), lr, head.temperature(),
                                      float(result.grad_norm), throughput)
            if self.validation is not None and self.validation.due(done, total):
                self.validation.run(done, self.heads, self.state, self._log_values)
            if done % run.checkpoint_every == 0 or done == total:
                if ctx.is_main:
                    last_good = save_checkpoint(ckpt_dir, done, self.state(done), run.keep_checkpoints)
                if ctx.world_size > 1:
                    dist.barrier()
        bar.close()
        return last_good

    def _check_items(self, batch: dict[str, Any]) -> None:
        """Stop at a bad item (``on_error: fail``) or log and count the skipped ones, in the training process."""
        raise_bad_item(batch)
        if self.recipe.modalities[batch["modality"]].data.on_error != "skip":
            return
        records = list(batch.get("skipped", []))
        if self.ctx.world_size > 1:  # counted at the next read point, with every rank's (see _exchange_skips)
            self.pending_skips.extend(records)
        else:
            self.skipped.add(records)

    def _exchange_skips(self) -> None:
        """Distributed: count every rank's skipped items since the last read point, so that all ranks stop (or not)
        together, at the same step. Done at log points and checkpoints, not per step: the object gather reads
        sizes to the host."""
        if self.ctx.world_size == 1 or not any(b.data.on_error == "skip" for b in self.recipe.modalities.values()):
            return
        gathered: list[Any] = [None] * self.ctx.world_size
        dist.all_gather_object(gathered, self.pending_skips)
        self.pending_skips = []
        self.skipped.add(record for part in gathered for record in part)

    def _stop_if_non_finite(self, watch: NonFiniteWatch, last_good: Path | None) -> None:
        """Raise for the first non-finite step since the run (re)started; its update was skipped on the device."""
        bad = watch.first()
        if bad is not None:
            step, what = bad
            name, local_step, _ = self.plan.step(step)
            self._non_finite(step, name, local_step, what, last_good)

    def _non_finite(self, step: int, name: str, local_step: int, what: str, last_good: Path | None) -> None:
        kept = f"the last good checkpoint {last_good} is intact" if last_good else "no checkpoint was written yet"
        self._close_logs()
        raise NonFiniteError(
            f"non-finite {what} at step {step} (pair image↔{name}, its step {local_step}); training stopped and "
            f"{kept}. Try a lower modalities.{name}.train.lr, a grad_clip, or check the {name} inputs")

    # -- outputs ------------------------------------------------------------------------------------
    def _open_logs(self, start: int) -> None:
        self.metrics_file = None
        self.tb = None
        self.pending_skips: list[dict[str, Any]] = []
        self.skipped = SkippedItems(self.out / SKIPPED_FILE, {n: (b.data.max_skipped, len(self.sources[n]))
                                                              for n, b in self.recipe.modalities.items()},
                                    log=self.ctx.log, write=self.ctx.is_main, resume_step=start)
        for name, source in sorted(self.sources.items()):  # inputs a source left out (videos without sound, ...)
            self.skipped.note_unusable(name, getattr(source, "unusable", []), getattr(source, "inputs_total", 0))
        if not self.ctx.is_main:
            return
        path = self.out / "metrics.csv"
        rows = []
        if path.is_file() and start > 0:  # keep the rows before the resume point only
            with path.open(newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= start]
        self.metrics_file = path.open("w", newline="")
        columns = self.validation.columns if self.validation is not None else []
        self.metrics_writer = csv.DictWriter(self.metrics_file, fieldnames=[*METRICS_FIELDS, *columns],
                                             extrasaction="ignore")  # a resume may drop validation columns
        self.metrics_writer.writeheader()
        self.metrics_writer.writerows(rows)
        if self.recipe.run.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out / "tensorboard"), purge_step=start or None)
            except ImportError:
                self.ctx.log("tensorboard is not installed: metrics go to metrics.csv only")

    def _log_metrics(self, step: int, name: str, local_step: int, loss: float, lr: float, temperature: float,
                     grad_norm: float, throughput: float) -> None:
        row = {"step": step, "modality": name, "local_step": local_step, "loss": f"{loss:.6f}", "lr": f"{lr:.3e}",
               "temperature": f"{temperature:.4f}", "grad_norm": f"{grad_norm:.4f}",
               "samples_per_s": f"{throughput:.1f}", "elapsed_s": f"{time.perf_counter() - self.started:.1f}"}
        if self.metrics_file is not None:
            self.metrics_writer.writerow(row)
            self.metrics_file.flush()
        if self.tb is not None:
            self.tb.add_scalar(f"loss/{name}", loss, step)
            self.tb.add_scalar(f"lr/{name}", lr, step)
            self.tb.add_scalar(f"temperature/{name}", temperature, step)
            self.tb.add_scalar("throughput/samples_per_s", throughput, step)

    def _log_values(self, step: int, values: dict[str, float]) -> None:
        """One row of named values (validation's ``val/...`` columns) in metrics.csv and TensorBoard."""
        if self.metrics_file is not None:
            elapsed = f"{time.perf_counter() - self.started:.1f}"
            self.metrics_writer.writerow({"step": step, "elapsed_s": elapsed}
                                         | {key: f"{value:.6f}" for key, value in values.items()})
            self.metrics_file.flush()
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, step)

    def _close_logs(self) -> None:
        if getattr(self, "metrics_file", None) is not None:
            self.metrics_file.close()
            self.metrics_file = None
        if getattr(self, "tb", None) is not None:
            self.tb.close()
            self.tb = None

    def _save_modalities(self) -> None:
        """Everything a later ``--model RUN`` needs: the trained modalities plus the anchor's towers."""
        folder = self.out / MODALITIES_DIR
        made_by = f"bindcore train {self.recipe.name}"
        for name, head in self.heads.items():
            head.modality.save(folder / name, overwrite=True, source=made_by)
        for tower in (self.setup.vision, self.setup.text):
            tower.save(folder / tower.name, overwrite=True, source=made_by)
        temperatures = {n: h.temperature() for n, h in self.heads.items()}
        with atomic_file(self.out / "temperatures.json", "w") as handle:
            handle.write(json.dumps(temperatures, indent=2) + "\n")


def train(recipe: ValidatedRecipe, out: str | os.PathLike[str], *, resume: bool | str = "auto",
          overwrite: bool = False, log: Callable[[str], None] = print,
          step_hook: Callable[[int, dict[str, Any]], None] | None = None) -> TrainResult:
    """Train a validated recipe into ``out`` (auto-resuming from its latest checkpoint). Evaluation is separate:
    :func:`bindcore.eval.run.evaluate` (the ``bindcore train`` command runs it afterwards)."""
    trainer = Trainer(RunSetup(recipe, out, log=log), resume=resume, overwrite=overwrite, step_hook=step_hook)
    result = trainer.fit()
    trainer.ctx.barrier()
    return result


__all__ = ["BindHead", "TrainResult", "Trainer", "lr_at", "train"]
