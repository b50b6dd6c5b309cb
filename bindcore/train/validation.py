"""Validation during training: every ``run.val_every`` steps (default: at each checkpoint) and at the last step, each
modality with a ``data.val`` split is measured on its held-out (image, modality) pairs:

* ``val/<m>/loss``: the run's symmetric InfoNCE (:func:`bindcore.loss.info_nce_with_stats`, the head's current
  temperature, no gathering across processes) over consecutive batches of the modality's ``train.batch_size``
  (the whole split when smaller), averaged by batch size; a last batch of one item is left out (no negatives);
* ``val/<m>/image-><m> R@k`` and ``val/<m>/<m>->image R@k`` (k = 1, 5): retrieval among all the split's items,
  where item i's match is item i (:func:`bindcore.eval.metrics.retrieval_recall`).

The split is read and preprocessed once (first validation) and kept in memory with the frozen anchor's image
embeddings; each validation embeds the modality in eval mode without gradients. Validation runs on rank 0 (the
others wait) and never changes the training RNG stream: the RNG states are restored afterwards, so a run ends with
the same weights with or without it. Values go to metrics.csv and TensorBoard (the trainer's log), the latest to
``RUN/validation.json``; with ``run.keep_best`` the best checkpoint so far is ``checkpoints/best.pt``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from bindcore.data.batches import preprocess_all
from bindcore.data.sources import IMAGE_KEY, PairedSource
from bindcore.errors import BindcoreError, ConfigError
from bindcore.eval.metrics import retrieval_recall
from bindcore.io import atomic_file
from bindcore.loss import info_nce_with_stats
from bindcore.recipe.validation import VAL_RECALLS, describe_val, validation_metrics
from bindcore.train.checkpoint import (
    BEST_CHECKPOINT,
    best_checkpoint_record,
    rng_state,
    save_best_checkpoint,
    set_rng_state,
)

VALIDATION_FILE = "validation.json"


class Validation:
    """The validation of one run (build with :meth:`for_run`; ``None`` when no modality has a ``data.val``)."""

    def __init__(self, setup: Any, modules: dict[str, Any], names: list[str], checkpoints: Path,
                 autocast: Callable[[], Any]):
        self.setup, self.recipe, self.ctx = setup, setup.recipe, setup.ctx
        self.names = names
        self.modules = modules
        self.checkpoints = checkpoints
        self.autocast = autocast
        self.every = self.recipe.run.val_every or self.recipe.run.checkpoint_every
        self.keep_best = self.recipe.run.keep_best
        self.best: dict[str, Any] | None = None
        self._best_read = False
        self.sources: dict[str, PairedSource] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self._prepared: dict[str, tuple[Tensor, Tensor]] = {}
        if self.ctx.is_main:  # reads the manifests / indexes the shards now: a bad split stops the run before step 1
            for name in names:
                self.sources[name] = source = setup.source(name, modules[name], split="val")
                block = self.recipe.modalities[name].data.val
                if len(source) < VAL_RECALLS[-1]:
                    raise ConfigError(f"modalities.{name}.data.val: {len(source)} items; validation needs at least "
                                      f"{VAL_RECALLS[-1]} (for R@{VAL_RECALLS[-1]})")
                location = block.manifest if block.kind == "manifest" else block.shards
                path = self.recipe.resolve(location) if location else None
                self.data[name] = {"source": describe_val(block, name, path, len(source), self.recipe.data.toy),
                                   "items": len(source)}

    @classmethod
    def for_run(cls, setup: Any, modules: dict[str, Any], checkpoints: Path,
                autocast: Callable[[], Any]) -> Validation | None:
        names = [n for n, block in sorted(setup.recipe.modalities.items()) if block.data.val is not None]
        return cls(setup, modules, names, checkpoints, autocast) if names else None

    @property
    def columns(self) -> list[str]:
        """The metrics.csv columns of a validation row."""
        return [column for name in self.names for column in validation_metrics(name)]

    def due(self, step: int, total: int) -> bool:
        return step % self.every == 0 or step == total

    # -- one validation ---------------------------------------------------------------------------------
    def run(self, step: int, heads: dict[str, Any], state: Callable[[int], dict[str, Any]],
            log_values: Callable[[int, dict[str, float]], None]) -> None:
        """Validate at ``step`` (every rank calls this; rank 0 works): log the values, update the best checkpoint
        (``state(step)`` is the trainer's checkpoint payload) and ``RUN/validation.json``."""
        self.ctx.run_on_main(lambda: self._run(step, heads, state, log_values), f"validating at step {step}")

    def _run(self, step: int, heads: dict[str, Any], state: Callable[[int], dict[str, Any]],
             log_values: Callable[[int, dict[str, float]], None]) -> None:
        started = time.perf_counter()
        saved = rng_state()  # a plugin's preprocess or forward may draw; training must not notice
        try:
            values: dict[str, float] = {}
            for name in self.names:
                values.update(self._measure(name, heads[name]))
        finally:
            set_rng_state(saved)
        log_values(step, values)
        best_line = self._keep_best(step, values, state) if self.keep_best is not None else ""
        report = {"step": step, "metrics": values, "data": self.data, "best": self.best,
                  "seconds": round(time.perf_counter() - started, 2)}
        with atomic_file(self.setup.out / VALIDATION_FILE, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(report, indent=2) + "\n")
        summary = "; ".join(f"{name} loss {values[f'val/{name}/loss']:.3f}, image->{name} R@1 "
                            f"{100 * values[f'val/{name}/image->{name} R@1']:.1f}%" for name in self.names)
        self.ctx.log(f"validation at step {step}: {summary}{best_line}")

    @torch.no_grad()
    def _measure(self, name: str, head: Any) -> dict[str, float]:
        inputs, images = self._split(name, head)
        was_training = head.training
        head.eval()
        try:
            embedded = self._embed(head.modality, inputs)
        finally:
            head.train(was_training)
        if not torch.isfinite(embedded).all():
            raise BindcoreError(f"validation of {name}: the encoder gave non-finite embeddings on the held-out split "
                                f"({self.data[name]['source']})")
        scale = head.loss.logit_scale().detach().float().cpu()
        batch = min(self.recipe.modalities[name].train.batch_size, len(embedded))
        total, count = 0.0, 0
        for z, y in zip(embedded.split(batch), images.split(batch), strict=True):
            if len(z) >= 2:
                total += float(info_nce_with_stats(z, y, logit_scale=scale, gather=False).loss) * len(z)
                count += len(z)
        z, y = F.normalize(embedded, dim=-1), F.normalize(images, dim=-1)
        columns = iter(validation_metrics(name))
        values = {next(columns): total / count}
        for recall in (retrieval_recall(y, z, VAL_RECALLS), retrieval_recall(z, y, VAL_RECALLS)):
            values.update({next(columns): recall[k] for k in VAL_RECALLS})
        return values

    def _embed(self, module: Any, inputs: Tensor) -> Tensor:
        rows = []
        for chunk in inputs.split(self.recipe.eval.batch_size):
            chunk = chunk.to(self.ctx.device)
            with self.autocast():
                x = module.to_model_input(chunk) if hasattr(module, "to_model_input") else chunk
                rows.append(module(x).float().cpu())
        return torch.cat(rows)

    def _split(self, name: str, head: Any) -> tuple[Tensor, Tensor]:
        """The split's preprocessed ``name`` inputs and the anchor's embeddings of its images (made once)."""
        if name not in self._prepared:
            source, workers = self.sources[name], self.recipe.data.workers
            try:
                inputs = preprocess_all(source, name, head.modality, workers=workers)
                images = preprocess_all(source, IMAGE_KEY, self.setup.vision, workers=workers)
            except BindcoreError:
                raise
            except Exception as exc:  # a file the plugins cannot read: name the split
                raise ConfigError(f"modalities.{name}.data.val: an item of {self.data[name]['source']} could not be "
                                  f"preprocessed ({type(exc).__name__}: {exc}); fix or remove it") from None
            rows = []
            with torch.no_grad():
                for chunk in images.split(self.recipe.eval.batch_size):
                    with self.autocast():
                        rows.append(self.setup.anchor.encode_image(chunk.to(self.ctx.device)).float().cpu())
            self._prepared[name] = (inputs, torch.cat(rows))
        return self._prepared[name]

    # -- the best checkpoint ----------------------------------------------------------------------------
    def _keep_best(self, step: int, values: dict[str, float], state: Callable[[int], dict[str, Any]]) -> str:
        assert self.keep_best is not None
        metric, maximise = self.keep_best.metric, self.keep_best.best_is_max()
        if not self._best_read:  # a resumed run carries on with the best of its earlier part
            record = best_checkpoint_record(self.checkpoints)
            if record is not None and record.get("metric") == metric:
                self.best = {"metric": metric, "mode": "max" if maximise else "min", "value": record["value"],
                             "step": record["step"], "checkpoint": str(self.checkpoints / BEST_CHECKPOINT)}
            self._best_read = True
        value = values[metric]
        previous = None if self.best is None else self.best["value"]
        if previous is None or (value > previous if maximise else value < previous):
            path = save_best_checkpoint(self.checkpoints, step, state(step), metric, value)
            self.best = {"metric": metric, "mode": "max" if maximise else "min", "value": value, "step": step,
                         "checkpoint": str(path)}
            return f" (best {metric} so far: kept as {path.name})"
        return ""


# -- the table at the end of a run --------------------------------------------------------------------------
def read_validation(out: Path) -> dict[str, Any] | None:
    """The latest validation of run directory ``out`` (its ``validation.json``), or None."""
    try:
        return json.loads((Path(out) / VALIDATION_FILE).read_text())
    except (OSError, ValueError):
        return None


def format_validation_table(report: dict[str, Any]) -> str:
    """Per modality: held-out loss, image↔modality R@1/R@5, items and the data they are on."""
    metrics = report["metrics"]
    lines = [f"Validation at step {report['step']} (held-out pairs; retrieval among each split's items)",
             f"{'modality':<10} {'loss':>7} {'img->m R@1':>10} {'R@5':>6} {'m->img R@1':>10} {'R@5':>6} "
             f"{'items':>6}  data"]
    for name, data in report["data"].items():
        forward = [metrics[f"val/{name}/image->{name} R@{k}"] for k in VAL_RECALLS]
        backward = [metrics[f"val/{name}/{name}->image R@{k}"] for k in VAL_RECALLS]
        lines.append(f"{name:<10} {metrics[f'val/{name}/loss']:>7.3f} {100 * forward[0]:>9.1f}% "
                     f"{100 * forward[1]:>5.1f}% {100 * backward[0]:>9.1f}% {100 * backward[1]:>5.1f}% "
                     f"{data['items']:>6}  {data['source']}")
    best = report.get("best")
    if best:
        lines.append(f"best checkpoint by {best['metric']} ({best['mode']}): step {best['step']}, "
                     f"{best['value']:.4f} -> {best['checkpoint']}")
    return "\n".join(lines)


__all__ = ["VALIDATION_FILE", "Validation", "format_validation_table", "read_validation"]
