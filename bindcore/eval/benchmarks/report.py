"""A benchmark result for people: the text table ``bindcore benchmark`` prints and the PNG it writes (a confusion
matrix for up to 50 classes, per-class accuracy or AP bars beyond; the recall-at-k curve for retrieval)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

CONFUSION_MAX_CLASSES = 50


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_result(result: dict[str, Any]) -> str:
    """Metric, value and the paper's value, under a line saying what was measured on what."""
    kind = {True: "emergent: bound with image pairs only", False: "not emergent",
            None: "emergent: unknown"}[result.get("emergent")]
    lines = [f"{result['benchmark']} ({result['task']}, {result['modality']}; {kind}): {result['num_items']} "
             f"items scored, {result['num_problems']} problem(s)"]
    paper = result.get("paper") or {}
    source = f" ({result['paper_source']})" if result.get("paper_source") else ""
    lines.append(f"{'metric':<8} {'value':>8} {'paper':>8}{source}")
    for metric, value in result["metrics"].items():
        lines.append(f"{metric:<8} {_percent(value):>8} {_percent(paper.get(metric)):>8}")
    few = result.get("few_shot")
    if few:
        lines.append(f"few-shot linear probe (test fold {few['test_fold']}, {few['seeds']} seed(s)): " + ", ".join(
            f"{k}-shot {100 * v['top1_mean']:.1f}±{100 * v['top1_std']:.1f}%" for k, v in few["shots"].items()))
    return "\n".join(lines)


def save_benchmark_plot(result: dict[str, Any], scored: dict[str, Any], path: Path) -> Path:
    """Write the PNG of ``result`` from the scores the runner kept (``scored``); atomically, like the JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bindcore.io import atomic_file

    figure, axis = plt.subplots(figsize=(7, 6))
    title = f"{result['benchmark']} ({result['modality']})"
    if "recall_curve" in scored:
        curve = scored["recall_curve"]
        axis.plot(list(curve), [100 * v for v in curve.values()], marker=".")
        axis.set_xlabel("k")
        axis.set_ylabel("recall@k (%)")
        axis.set_ylim(0, 100)
        axis.set_title(f"{title}: {result['query_modality']} → {result['modality']} retrieval")
    elif "per_class" in scored:
        _bars(axis, scored["class_names"], scored["per_class"], "average precision (%)")
        axis.set_title(f"{title}: per-class AP, mAP {_percent(result['metrics']['mAP'])}")
    else:
        names, labels, predicted = scored["class_names"], scored["labels"], scored["scores"].argmax(dim=-1)
        classes = len(names)
        if classes <= CONFUSION_MAX_CLASSES:
            matrix = torch.zeros(classes, classes)
            matrix.index_put_((labels, predicted), torch.ones(len(labels)), accumulate=True)
            matrix = matrix / matrix.sum(dim=1, keepdim=True).clamp(min=1)
            image = axis.imshow(matrix.numpy(), cmap="viridis", vmin=0, vmax=1)
            size = max(4, min(9, 400 // classes))
            axis.set_xticks(range(classes), names, rotation=90, fontsize=size)
            axis.set_yticks(range(classes), names, fontsize=size)
            axis.set_xlabel("predicted")
            axis.set_ylabel("true")
            figure.colorbar(image, ax=axis, fraction=0.046)
        else:
            accuracy = [float((predicted[labels == c] == c).float().mean()) if bool((labels == c).any()) else None
                        for c in range(classes)]
            _bars(axis, names, accuracy, "top-1 (%)")
        axis.set_title(f"{title}: zero-shot top-1 {_percent(result['metrics']['top1'])}")
    figure.tight_layout()
    with atomic_file(path) as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)
    return path


def _bars(axis: Any, names: list[str], values: list[float | None], label: str) -> None:
    heights = [0.0 if v is None else 100 * v for v in values]
    axis.bar(range(len(names)), heights, color="tab:blue")
    axis.set_xticks(range(len(names)), names, rotation=90, fontsize=max(3, min(8, 600 // max(len(names), 1))))
    axis.set_ylim(0, 100)
    axis.set_ylabel(label)
