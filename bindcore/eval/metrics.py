"""Metrics over unit-norm embeddings (all fractions in [0, 1])."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def class_embeddings(class_names: Sequence[str], templates: Sequence[str],
                     encode_text: Callable[[list[str]], Tensor]) -> Tensor:
    """CLIP-style class prototypes: each name through every template, text embeddings averaged, re-normalised."""
    prototypes = []
    for name in class_names:
        embedded = F.normalize(encode_text([t.format(name) for t in templates]).float(), dim=-1)
        prototypes.append(F.normalize(embedded.mean(dim=0), dim=-1))
    return torch.stack(prototypes)


def zero_shot_top1(embeddings: Tensor, prototypes: Tensor, labels: Tensor) -> float:
    """Fraction of rows whose most similar class prototype is their label."""
    predicted = (embeddings.float() @ prototypes.float().T).argmax(dim=-1)
    return float((predicted == labels).float().mean())


def retrieval_recall(queries: Tensor, gallery: Tensor, ks: Sequence[int] = (1, 5),
                     query_labels: Tensor | None = None, gallery_labels: Tensor | None = None) -> dict[int, float]:
    """Recall@k where query i's match is gallery item i (or, with labels, any item of the same label)."""
    similarity = queries.float() @ gallery.float().T
    top = similarity.topk(max(ks), dim=-1).indices
    if query_labels is None or gallery_labels is None:
        hits = top == torch.arange(len(queries)).unsqueeze(1)
    else:
        hits = gallery_labels[top] == query_labels.unsqueeze(1)
    return {k: float(hits[:, :k].any(dim=1).float().mean()) for k in ks}


def combine(*embeddings: Tensor, scale: float = 0.5) -> Tensor:
    """Embedding arithmetic (ImageBind App. B.4): L2-normalise each, scale, sum, re-normalise."""
    total = sum(F.normalize(e.float(), dim=-1) * scale for e in embeddings)
    return F.normalize(total, dim=-1)  # type: ignore[arg-type]


def arithmetic_top2(a: Tensor, labels_a: Tensor, b: Tensor, labels_b: Tensor, prototypes: Tensor,
                    pairs: int = 500, seed: int = 0) -> float:
    """Compose an ``a`` item with a ``b`` item of another class; fraction whose top-2 classes are exactly both."""
    generator = torch.Generator().manual_seed(seed)
    i = torch.randint(len(a), (pairs,), generator=generator)
    j = torch.randint(len(b), (pairs,), generator=generator)
    keep = labels_a[i] != labels_b[j]
    i, j = i[keep], j[keep]
    if len(i) == 0:
        return 0.0
    top2 = (combine(a[i], b[j]) @ prototypes.float().T).topk(2, dim=-1).indices
    wanted = torch.stack([labels_a[i], labels_b[j]], dim=1)
    ok = ((top2 == wanted[:, :1]).any(dim=1) & (top2 == wanted[:, 1:]).any(dim=1))
    return float(ok.float().mean())
