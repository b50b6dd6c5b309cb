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
from bindcore.eval.metrics import arithmetic_top2, class_embeddings, retrieval_recall, zero_shot_top1
from bindcore.eval.report import format_table, save_plot
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
def evaluate(recipe: Any, anchor: Any, vision: Any, text: Any, modules: dict[str, Any], out: Path | None, *,
             device: torch.device | str = "cpu", log: Callable[[str], None] = print,
             pairing: dict[str, str] | None = None) -> dict[str, Any]:
    """Run every metric; write ``out/eval.json`` and ``out/eval.png``; print a Table-2-style table."""
    from bindcore.train.anchor_setup import DEFAULT_TEMPLATES

    started = time.perf_counter()
    device = torch.device(device)
    settings = recipe.recipe.eval
    toy = recipe.recipe.data.toy
    workers = recipe.recipe.data.workers
    templates = settings.templates or list(DEFAULT_TEMPLATES)
    pairing = pairing or {name: "image" for name in modules}
    skipped = {}
    renderers: dict[str, Any] = {IMAGE_KEY: vision}
    for name, module in modules.items():
        try:
            module.render_toy(generate_scenes(1, 0)[0])
            renderers[name] = module
        except NotImplementedError:
            skipped[name] = "no toy-world renderer"
    source = ToySource(toy.eval_scenes, toy.seed + 1_000_003, renderers)
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
        "classes": list(CONCEPTS),
        "templates": len(templates),
        "skipped": skipped,
        "seconds": round(time.perf_counter() - started, 2),
    }
    log(format_table(result))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        temporary = out / "eval.json.tmp"
        temporary.write_text(json.dumps(result, indent=2) + "\n")
        os.replace(temporary, out / "eval.json")
        if settings.plot:
            similarity = _concept_similarity(embeddings, labels, classes, bound[:2])
            save_plot(result, similarity, out / "eval.png")
        log(f"wrote {out / 'eval.json'}" + (f" and {out / 'eval.png'}" if settings.plot else ""))
    return result


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


def evaluate_trainer(trainer: Any, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    modules = {name: head.modality for name, head in trainer.heads.items()}
    return evaluate(trainer.recipe, trainer.anchor, trainer.vision, trainer.text, modules, trainer.out,
                    device=trainer.ctx.device, log=log)


def evaluate_run_dir(run_dir: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """``bindcore eval RUN_DIR``: reload the recipe, the anchor and the trained modalities, then evaluate."""
    from bindcore.errors import ConfigError
    from bindcore.io import load_modality
    from bindcore.train.anchor_setup import FrozenOpenClip, load_named_anchor
    from bindcore.train.recipe import load_recipe
    from bindcore.train.trainer import build_anchor_side

    run_dir = Path(run_dir)
    recipe_path = run_dir / "recipe.yaml"
    if not recipe_path.is_file():
        raise ConfigError(f"{run_dir} is not a bindcore run directory (no recipe.yaml); "
                          f"train first: bindcore train RECIPE --out {run_dir}")
    recipe = load_recipe(recipe_path, check_files=False)
    vision, text = build_anchor_side(recipe)
    if recipe.anchor.model == "tiny":
        from bindcore.train.anchor_setup import build_tiny_open_clip

        state_path = run_dir / "anchor" / "anchor.pt"
        if not state_path.is_file():
            raise ConfigError(f"{state_path} is missing: the run did not finish pretraining its anchor")
        saved = torch.load(state_path, map_location="cpu", weights_only=False)
        model = build_tiny_open_clip(recipe.anchor.tiny)
        model.load_state_dict(saved["state_dict"])
        anchor = FrozenOpenClip(model, {"model": "tiny", **saved["meta"]})
    else:
        anchor = load_named_anchor(recipe.anchor, recipe.resolve)
    modules = {}
    for name in recipe.modalities:
        path = run_dir / "modalities" / name
        if not path.is_dir():
            raise ConfigError(f"{path} is missing: the run has not finished training {name}")
        modules[name] = load_modality(path)
    return evaluate(recipe, anchor, vision, text, modules, Path(out) if out else run_dir, log=log)
