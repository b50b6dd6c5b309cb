"""``bindcore benchmark``: read a benchmark's dataset, embed it with a model directory's modalities, score it the
paper's way, write ``OUT/<NAME>.json`` and ``OUT/<NAME>.png``.

Only the modalities a benchmark needs are loaded (the measured one, plus ``text`` for zero-shot prompts or the
query side of a retrieval). Items that fail to load or preprocess are embedded around, listed in ``problems`` and
counted, never dropped silently; the metrics are over the items that were embedded (``num_items``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ValidationError
from torch import Tensor

from bindcore.errors import ConfigError
from bindcore.eval.benchmarks.spec import Benchmark, Classification, Problem, Retrieval
from bindcore.io import atomic_file

RETRIEVAL_KS = (1, 5, 10)
DEFAULT_SEEDS = 3


def benchmark_options(benchmark: Benchmark, options: Mapping[str, Any] | None, modality: str | None) -> BaseModel:
    """The benchmark's validated ``-o`` options; ``modality`` fills a generic benchmark's ``modality`` option."""
    from bindcore.config import format_validation_error

    values = dict(options or {})
    if modality is not None:
        if benchmark.modality != "*" and modality != benchmark.modality:
            raise ConfigError(f"benchmark {benchmark.name!r} measures {benchmark.modality!r}, not {modality!r}; "
                              f"drop --modality (or pick another benchmark: `bindcore benchmark --list`)")
        if benchmark.modality == "*":
            values.setdefault("modality", modality)
    try:
        return benchmark.options.model_validate(values)
    except ValidationError as error:
        hint = " (pass --modality M)" if benchmark.modality == "*" and "modality" not in values else ""
        raise ConfigError(f"options of benchmark {benchmark.name!r}{hint}:\n"
                          + format_validation_error(benchmark.options, error)) from None


def run_benchmark(benchmark: Benchmark | str, root: str | os.PathLike[str], model_dir: str | os.PathLike[str], *,
                  modality: str | None = None, out: str | os.PathLike[str] | None = None, batch_size: int = 32,
                  device: str | torch.device = "cpu", shots: Sequence[int] | None = None,
                  seeds: int = DEFAULT_SEEDS, options: Mapping[str, Any] | None = None,
                  templates: Sequence[str] | None = None, log: Callable[[str], None] = print,
                  progress: bool | None = None) -> dict[str, Any]:
    """Run ``benchmark`` on the dataset at ``root`` with the modalities of ``model_dir`` (a ``bindcore convert``
    output or a ``bindcore train`` run directory); returns the result (also written to ``out`` when given).

    ``shots`` adds the few-shot linear probe (classification only) over ``seeds`` seeds; ``templates`` replaces
    the prompt templates (default: the benchmark's, else CLIP's 80 ImageNet templates); ``progress``: a bar over
    items (``None``: on a terminal only).
    """
    from bindcore.eval.benchmarks.provenance import binding_of
    from bindcore.eval.benchmarks.registry import get_benchmark
    from bindcore.inference import BindModel

    started = time.perf_counter()
    spec = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    parsed = benchmark_options(spec, options, modality)
    data = spec.read(Path(root), parsed)
    measured = _measured_modality(spec, parsed)
    if shots and (not isinstance(data, Classification) or spec.task != "zero_shot"):
        raise ConfigError(f"--shots needs a single-label classification benchmark; {spec.name!r} is {spec.task}")
    other = "text" if isinstance(data, Classification) else data.query_modality
    model = BindModel.load(model_dir, list(dict.fromkeys([measured, other])), batch_size=batch_size)
    model = model.to(torch.device(device))
    problems = list(data.problems)
    emergent, basis = binding_of(model_dir, measured)
    result: dict[str, Any] = {"benchmark": spec.name, "task": spec.task, "modality": measured}
    if isinstance(data, Classification):
        prompts = list(templates or data.templates or _clip_templates())
        scored = _classify(model, measured, data, prompts, problems, batch_size, progress, log,
                           multilabel=spec.task == "multilabel")
        result.update(scored.pop("result"))
        if shots:
            from bindcore.eval.benchmarks.fewshot import few_shot_probe

            log(f"few-shot linear probe: {', '.join(map(str, shots))} shots x {seeds} seeds")
            result["few_shot"] = few_shot_probe(scored["embeddings"], scored["rows"], data.labels,  # type: ignore
                                                data.folds, shots, seeds)
    else:
        scored = _retrieve(model, measured, data, problems, batch_size, progress)
        result.update(scored.pop("result"))
    result.update({
        "emergent": emergent, "emergent_basis": basis,
        "paper": dict(spec.paper), "paper_source": spec.paper_source,
        "num_problems": len(problems), "problems": [p.as_dict() for p in problems],
        "dataset_root": str(Path(root).resolve()), "model": str(Path(model_dir).resolve()),
        "protocol": spec.protocol, "options": parsed.model_dump(mode="json"),
        "seconds": round(time.perf_counter() - started, 2),
    })
    if problems:
        log(f"{len(problems)} item(s) could not be used (listed under 'problems' in the result); first: "
            f"{problems[0].source}: {problems[0].reason}")
    if out is not None:
        write_result(result, scored, Path(out), log)
    return result


def write_result(result: dict[str, Any], scored: dict[str, Any], out: Path, log: Callable[[str], None]) -> None:
    from bindcore.eval.benchmarks.report import save_benchmark_plot

    name = result["benchmark"]
    with atomic_file(out / f"{name}.json", "w", encoding="utf-8") as handle:
        handle.write(json.dumps(result, indent=2) + "\n")
    save_benchmark_plot(result, scored, out / f"{name}.png")
    log(f"wrote {out / f'{name}.json'} and {out / f'{name}.png'}")


def _measured_modality(spec: Benchmark, options: BaseModel) -> str:
    from bindcore.eval.benchmarks.generic import MODALITY_OF_KEY

    name = spec.modality if spec.modality != "*" else str(options.modality)  # type: ignore[attr-defined]
    return MODALITY_OF_KEY.get(name, name)


def _clip_templates() -> tuple[str, ...]:
    from bindcore.eval.prompts import clip_imagenet_templates

    return clip_imagenet_templates()


def embed_listed(model: Any, name: str, items: Sequence[Any], sources: Sequence[str], problems: list[Problem],
                 batch_size: int, progress: bool | None) -> tuple[Tensor, list[int | None]]:
    """Embed ``items`` with a progress bar over items; failures go to ``problems`` (with the item's source).
    Returns the embeddings of the items that succeeded and, per item, its row (``None``: failed)."""
    from tqdm.auto import tqdm

    rows: list[int | None] = []
    chunks: list[Tensor] = []
    done = 0
    with tqdm(total=len(items), desc=f"{name}", unit="item", disable=None if progress is None else not progress,
              leave=False) as bar:
        for start in range(0, len(items), batch_size):
            batch = list(items[start:start + batch_size])
            embedded = model.embed_items(name, batch, batch_size=batch_size, on_error="skip", progress=False)
            for offset, row in enumerate(embedded.rows):
                rows.append(None if row is None else done + row)
                if row is None:
                    problems.append(Problem(sources[start + offset], embedded.errors.get(offset, "not embedded")))
            done += len(embedded.embeddings)
            chunks.append(embedded.embeddings.float().cpu())
            bar.update(len(batch))
    embeddings = torch.cat(chunks) if chunks else torch.empty(0, model[name].embed_dim)
    return embeddings, rows


def _classify(model: Any, name: str, data: Classification, templates: Sequence[str], problems: list[Problem],
              batch_size: int, progress: bool | None, log: Callable[[str], None], *,
              multilabel: bool) -> dict[str, Any]:
    from bindcore.eval.metrics import class_embeddings, class_scores, mean_average_precision, top_k_accuracy

    embeddings, rows = embed_listed(model, name, data.items, data.sources, problems, batch_size, progress)
    kept = [i for i, row in enumerate(rows) if row is not None]
    if not kept:
        raise ConfigError(f"none of the {len(data.items)} items could be embedded (first problem: "
                          f"{problems[0].source}: {problems[0].reason})" if problems else "the benchmark has no items")
    text = model["text"]
    prototypes = class_embeddings(data.class_names, templates,
                                  lambda texts: text.embed(texts).float().cpu())
    scores = class_scores(embeddings, prototypes)
    classes = len(data.class_names)
    result: dict[str, Any] = {"num_items": len(kept), "num_listed": len(data.items), "num_classes": classes,
                              "templates": len(templates)}
    if multilabel:
        targets = torch.zeros(len(kept), classes)
        for row, index in enumerate(kept):
            targets[row, list(data.labels[index])] = 1  # type: ignore[arg-type]
        result["metrics"] = {"mAP": mean_average_precision(scores, targets)}
        per_class = _per_class_ap(scores, targets)
        return {"result": result, "embeddings": embeddings, "rows": rows, "scores": scores, "targets": targets,
                "per_class": per_class, "class_names": data.labels_for_display()}
    labels = torch.tensor([data.labels[i] for i in kept])
    folds = [data.folds[i] for i in kept] if data.folds is not None else None
    groups = sorted(set(folds)) if folds is not None else [None]
    per_fold: dict[str, dict[str, float]] = {}
    for fold in groups:
        mask = torch.ones(len(kept), dtype=torch.bool) if fold is None else torch.tensor([f == fold for f in folds])
        per_fold[str(fold)] = {"top1": top_k_accuracy(scores[mask], labels[mask], 1),
                               "top5": top_k_accuracy(scores[mask], labels[mask], 5)}
    result["metrics"] = {metric: sum(v[metric] for v in per_fold.values()) / len(per_fold)
                         for metric in ("top1", "top5")}
    if folds is not None:
        result["per_fold"] = per_fold
        log(f"{len(groups)} folds: " + ", ".join(f"{f} {100 * v['top1']:.1f}%" for f, v in per_fold.items()))
    return {"result": result, "embeddings": embeddings, "rows": rows, "scores": scores, "labels": labels,
            "class_names": data.labels_for_display()}


def _per_class_ap(scores: Tensor, targets: Tensor) -> list[float | None]:
    from sklearn.metrics import average_precision_score

    values: list[float | None] = []
    for c in range(targets.shape[1]):
        positive = targets[:, c].bool()
        values.append(float(average_precision_score(positive.numpy(), scores[:, c].numpy()))
                      if bool(positive.any()) else None)
    return values


def _retrieve(model: Any, name: str, data: Retrieval, problems: list[Problem], batch_size: int,
              progress: bool | None) -> dict[str, Any]:
    from bindcore.eval.metrics import retrieval_recall

    gallery, gallery_rows = embed_listed(model, name, data.gallery, data.gallery_sources, problems, batch_size,
                                         progress)
    queries, query_rows = embed_listed(model, data.query_modality, data.queries, data.query_sources, problems,
                                       batch_size, progress)
    kept, targets = [], []
    for q, (row, target) in enumerate(zip(query_rows, data.relevant, strict=True)):
        if row is None:
            continue  # already listed
        if gallery_rows[target] is None:
            problems.append(Problem(data.query_sources[q], f"its gallery item {data.gallery_sources[target]} could "
                                                           f"not be embedded, so the query is not scored"))
            continue
        kept.append(row)
        targets.append(gallery_rows[target])
    if not kept:
        raise ConfigError("no query could be scored (see the listed problems)")
    kept_queries = queries[kept]
    ks = tuple(range(1, min(50, len(gallery)) + 1))
    target_tensor = torch.tensor(targets)
    curve = retrieval_recall(kept_queries, gallery, ks, target_tensor, torch.arange(len(gallery)))
    metrics = {f"R@{k}": curve[min(k, len(gallery))] for k in RETRIEVAL_KS}
    result = {"metrics": metrics, "num_items": len(kept), "num_queries": len(data.queries),
              "num_gallery": len(gallery), "query_modality": data.query_modality}
    return {"result": result, "recall_curve": curve}
