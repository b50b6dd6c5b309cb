"""Human-readable evaluation output: a Table-2-style text table and a PNG (accuracy bars + similarity matrix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor


def format_table(result: dict[str, Any]) -> str:
    """Rows = bound modalities; columns = emergent zero-shot top-1, chance, pairing (like the paper's Table 2)."""
    mode = "EMERGENT (bound with image pairs only; never saw text)" if result["emergent"] else "TEXT-PAIRED"
    chance = result["chance"]
    lines = [*([f"Toy-world eval on: {result['data']}"] if result.get("data") else []),
             f"Zero-shot classification from text prompts — {mode}",
             f"{'modality':<10} {'top-1':>7} {'chance':>7}  pairing"]
    for name, value in result["zero_shot_top1"].items():
        lines.append(f"{name:<10} {100 * value:>6.1f}% {100 * chance['zero_shot_top1']:>6.1f}%  "
                     f"{result['pairing'].get(name, '')}")
    lines.append(f"{'image':<10} {100 * result['anchor_zero_shot_top1']:>6.1f}% "
                 f"{100 * chance['zero_shot_top1']:>6.1f}%  anchor (text-paired)")
    if result["retrieval_r1"]:
        lines.append("")
        lines.append(f"Cross-modal retrieval (never paired), {result['num_eval_scenes']} scenes; "
                     f"chance R@1 {100 * chance['retrieval_r1']:.2f}%")
        lines.append(f"{'pair':<18} {'R@1':>7} {'R@5':>7} {'concept@1':>10}")
        for pair, r1 in result["retrieval_r1"].items():
            lines.append(f"{pair:<18} {100 * r1:>6.1f}% {100 * result['retrieval_r5'][pair]:>6.1f}% "
                         f"{100 * result['retrieval_r1_same_concept'][pair]:>9.1f}%")
    if result.get("arithmetic_top2"):
        lines.append("")
        lines.append(f"Embedding arithmetic (a + b → both concepts in text top-2; chance "
                     f"{100 * chance['arithmetic_top2']:.1f}%): " + ", ".join(
                         f"{k} {100 * v:.1f}%" for k, v in result["arithmetic_top2"].items()))
    return "\n".join(lines)


def save_plot(result: dict[str, Any], similarity: tuple[str, str, Tensor] | None, path: Path) -> Path:
    """Per-modality zero-shot accuracy bars (with chance) and a concept similarity matrix between two modalities."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 2 if similarity is not None else 1
    figure, axes = plt.subplots(1, columns, figsize=(5.5 * columns, 4.5), squeeze=False)
    names = [*result["zero_shot_top1"], "image (anchor)"]
    values = [100 * v for v in result["zero_shot_top1"].values()] + [100 * result["anchor_zero_shot_top1"]]
    colors = ["tab:blue"] * len(result["zero_shot_top1"]) + ["tab:gray"]
    bars = axes[0][0]
    bars.bar(names, values, color=colors)
    bars.axhline(100 * result["chance"]["zero_shot_top1"], color="tab:red", linestyle="--", label="chance")
    for index, value in enumerate(values):
        bars.text(index, value + 1, f"{value:.0f}", ha="center", fontsize=9)
    bars.tick_params(axis="x", labelrotation=25)
    bars.set_ylim(0, 105)
    bars.set_ylabel("zero-shot top-1 (%)")
    kind = "emergent" if result["emergent"] else "text-paired"
    bars.set_title(f"Zero-shot from text prompts ({kind})")
    bars.legend(loc="lower right")
    if similarity is not None:
        a, b, matrix = similarity
        ax = axes[0][1]
        image = ax.imshow(matrix.numpy(), cmap="viridis", vmin=-1, vmax=1)
        classes = result["classes"]
        ax.set_xticks(range(len(classes)), classes, rotation=60, fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel(b)
        ax.set_ylabel(a)
        ax.set_title(f"{a} vs {b} concept similarity (never paired)")
        figure.colorbar(image, ax=ax, fraction=0.046)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
