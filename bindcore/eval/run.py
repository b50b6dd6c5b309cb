"""Evaluate bound modalities on the toy world's held-out scenes: emergent zero-shot classification from
text prompts (the bound modalities never saw text), cross-modal retrieval between every two modalities
(scene i of one modality should retrieve scene i of the other), and embedding arithmetic."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bindcore.data.batches import preprocess_all
from bindcore.data.sources import IMAGE_KEY, ToySource
from bindcore.errors import ConfigError
from bindcore.eval.metrics import arithmetic_top2, class_embeddings, retrieval_recall, zero_shot_top1
from bindcore.eval.prompts import DEFAULT_TEMPLATES
from bindcore.eval.report import format_table, save_plot
from bindcore.io import atomic_file
from bindcore.run_setup import EVAL_SCENES_OFFSET, RunSetup
from bindcore.toyworld import CONCEPTS, generate_scenes


@torch.no_grad()
def _embed(module: Any, inputs: Tensor, batch_size: int, device: torch.device) -> Tensor:
    was_training = module.training
    module.eval()
    rows = []
    for chunk in inputs.split(batch_size):
        rows.append(module(chunk.to(device=device, dtype=torch.float32 if chunk.is_floating_point() else chunk.dtype)
                           ).float().cpu())
    module.train(was_training)
    return torch.cat(rows)


@torch.no_grad()
def evaluate(setup: RunSetup, modules: dict[str, Any], out: Path | None = None, *,
             log: Callable[[str], None] = print, pairing: dict[str, str] | None = None) -> dict[str, Any]:
    """Run every metric on the toy world's held-out scenes with ``setup``'s anchor and those of ``modules`` that the
    run trained on the toy world (the others are listed under ``skipped``; :class:`ConfigError` when none was);
    write ``out/eval.json`` and ``out/eval.png`` (``out`` defaults to the run directory); print a Table-2-style
    table that names the data it is on."""
    recipe = setup.recipe
    elsewhere = trained_elsewhere(recipe, modules)
    if elsewhere and len(elsewhere) == len(modules):
        raise ConfigError("the toy-world eval does not apply: no modality of this run trained on the toy world ("
                          + ", ".join(f"{n}: {kind} data" for n, kind in elsewhere.items()) + "); measure them on "
                          "held-out data instead (modalities.<name>.data.val, eval.benchmarks, bindcore benchmark)")
    modules = {name: module for name, module in modules.items() if name not in elsewhere}
    anchor, vision, text = setup.anchor, setup.vision, setup.text
    device = setup.ctx.device
    out = setup.out if out is None else out
    started = time.perf_counter()
    settings = recipe.eval
    toy = recipe.data.toy
    workers = recipe.data.workers
    templates = settings.templates or list(DEFAULT_TEMPLATES)
    pairing = pairing or {name: "image" for name in modules}
    skipped = {name: f"trained on {kind} data, not the toy world" for name, kind in elsewhere.items()}
    renderers: dict[str, Any] = {IMAGE_KEY: vision}
    for name, module in modules.items():
        try:
            module.render_toy(generate_scenes(1, 0)[0])
            renderers[name] = module
        except NotImplementedError:
            skipped[name] = "no toy-world renderer"
    source = ToySource(toy.eval_scenes, toy.seed + EVAL_SCENES_OFFSET, renderers, nuisance=toy.nuisance)
    labels = torch.tensor([source.label(i) for i in range(len(source))])
    prototypes = class_embeddings(
        CONCEPTS, templates, lambda texts: anchor.encode_text(text.preprocess(texts).to(device)).cpu())
    embeddings: dict[str, Tensor] = {
        "image": anchor.encode_image(preprocess_all(source, IMAGE_KEY, vision, workers=workers).to(device)).cpu()}
    for name in renderers:
        if name != IMAGE_KEY:
            embeddings[name] = _embed(modules[name], preprocess_all(source, name, modules[name], workers=workers),
                                      settings.batch_size, device)
    bound = [n for n in embeddings if n != "image"]
    zero_shot = {name: zero_shot_top1(embeddings[name], prototypes, labels) for name in embeddings}
    pairs = settings.retrieval_pairs or [f"{a}->{b}" for a, b in itertools.permutations(bound, 2)]
    retrieval_r1, retrieval_r5, concept_r1 = {}, {}, {}
    for pair in pairs:
        query, _, gallery = pair.partition("->")
        if query not in embeddings or gallery not in embeddings:
            skipped[pair] = "modality not evaluated"
            continue
        recall = retrieval_recall(embeddings[query], embeddings[gallery])
        retrieval_r1[pair], retrieval_r5[pair] = recall[1], recall[5]
        concept_r1[pair] = retrieval_recall(embeddings[query], embeddings[gallery], (1,), labels, labels)[1]
    arithmetic = {}
    for a, b in itertools.combinations(bound, 2):
        arithmetic[f"{a}+{b}"] = arithmetic_top2(embeddings[a], labels, embeddings[b], labels, prototypes)
    count = len(source)
    classes = len(CONCEPTS)
    result: dict[str, Any] = {
        "emergent": all(p == "image" for p in pairing.values()),
        "pairing": {name: f"{pairing.get(name, 'image')}-paired" for name in bound},
        "anchor": {"image": "text-paired (the anchor itself)"},
        "zero_shot_top1": {n: zero_shot[n] for n in bound},
        "anchor_zero_shot_top1": zero_shot["image"],
        "retrieval_r1": retrieval_r1,
        "retrieval_r5": retrieval_r5,
        "retrieval_r1_same_concept": concept_r1,
        "arithmetic_top2": arithmetic,
        "chance": {"zero_shot_top1": 1 / classes, "retrieval_r1": 1 / count, "retrieval_r5": min(1.0, 5 / count),
                   "retrieval_r1_same_concept": 1 / classes, "arithmetic_top2": 2 / (classes * (classes - 1))},
        "num_eval_scenes": count,
        "data": f"toy world, {count} held-out scenes, seed {source.seed}",
        "classes": list(CONCEPTS),
        "templates": len(templates),
        "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 2),
    }
    log(format_table(result))
    if out is not None:
        out = Path(out)
        with atomic_file(out / "eval.json", "w", encoding="utf-8") as handle:
            handle.write(json.dumps(result, indent=2) + "\n")
        if settings.plot:
            similarity = _concept_similarity(embeddings, labels, classes, bound[:2])
            save_plot(result, similarity, out / "eval.png")
        log(f"wrote {out / 'eval.json'}" + (f" and {out / 'eval.png'}" if settings.plot else ""))
    return result


def trained_elsewhere(recipe: Any, modules: dict[str, Any]) -> dict[str, str]:
    """Modality → data kind, for each of ``modules`` that the run trained on other data than the toy world: the toy
    eval never scores them (toy scenes and class names say nothing about an encoder of the user's data)."""
    return {name: recipe.modalities[name].data.kind for name in modules
            if name in recipe.modalities and recipe.modalities[name].data.kind != "toy"}


def _concept_similarity(embeddings: dict[str, Tensor], labels: Tensor, classes: int,
                        names: list[str]) -> tuple[str, str, Tensor] | None:
    """Mean cosine similarity between concepts of two never-paired modalities (a (C, C) matrix)."""
    if len(names) < 2:
        return None
    a, b = names
    means = []
    for name in (a, b):
        rows = torch.stack([embeddings[name][labels == c].mean(dim=0) for c in range(classes)])
        means.append(torch.nn.functional.normalize(rows, dim=-1))
    return a, b, means[0] @ means[1].T


def evaluate_run_dir(run_dir: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """``bindcore eval RUN_DIR``: the run's recipe, its anchor and its trained modalities, evaluated again."""
    setup = RunSetup.from_run_dir(run_dir, log=log)
    return evaluate(setup, setup.load_modalities(), Path(out) if out else None, log=log)
