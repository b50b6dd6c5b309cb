"""Metrics over unit-norm embeddings (all fractions in [0, 1])."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def class_embeddings(class_names: Sequence[str | Sequence[str]], templates: Sequence[str],
                     encode_text: Callable[[list[str]], Tensor]) -> Tensor:
    """CLIP-style class prototypes: each name through every template, text embeddings averaged, re-normalised.

    A class given as a list of names (SUN RGB-D's "other", LLVIP's name lists) gets one prototype per name, scored
    as the maximum cosine over them (:func:`class_scores`): the result is then ``(C, M, D)`` with ``M`` the most
    names of any class, shorter lists padded by repeating their first name (a repeat cannot change a maximum).
    With one plain name per class it is ``(C, D)``, as before.
    """
    def prototype(name: str) -> Tensor:
        embedded = F.normalize(encode_text([t.format(name) for t in templates]).float(), dim=-1)
        return F.normalize(embedded.mean(dim=0), dim=-1)

    if all(isinstance(name, str) for name in class_names):
        return torch.stack([prototype(name) for name in class_names])  # type: ignore[arg-type]
    lists = [[name] if isinstance(name, str) else list(name) for name in class_names]
    if any(not names for names in lists):
        raise ValueError("every class needs at least one name")
    most = max(len(names) for names in lists)
    return torch.stack([torch.stack([prototype(n) for n in names] + [prototype(names[0])] * (most - len(names)))
                        for names in lists])


def class_scores(embeddings: Tensor, prototypes: Tensor) -> Tensor:
    """``(N, C)`` cosine of each row with each class: ``(C, D)`` prototypes, or ``(C, M, D)`` (several names per
    class) scored by the best-matching name."""
    if prototypes.ndim == 3:
        return torch.einsum("nd,cmd->ncm", embeddings.float(), prototypes.float()).amax(dim=-1)
    return embeddings.float() @ prototypes.float().T


def zero_shot_top1(embeddings: Tensor, prototypes: Tensor, labels: Tensor) -> float:
    """Fraction of rows whose most similar class prototype is their label."""
    return top_k_accuracy(class_scores(embeddings, prototypes), labels, 1)


def top_k_accuracy(scores: Tensor, labels: Tensor, k: int) -> float:
    """Fraction of rows of ``(N, C)`` ``scores`` whose label is among their ``k`` highest (ties: the lower class
    index first, as ``argmax``); ``k`` beyond ``C`` counts every row."""
    if len(labels) == 0:
        raise ValueError("no items to score")
    top = scores.topk(min(k, scores.shape[1]), dim=-1).indices
    return float((top == labels.unsqueeze(1)).any(dim=1).float().mean())


def mean_average_precision(scores: Tensor, targets: Tensor) -> float:
    """Multi-label mAP (AudioSet's metric): scikit-learn's average precision per class, averaged over the classes
    that have at least one positive (AP is undefined for a class without any)."""
    from sklearn.metrics import average_precision_score

    truth = targets.bool().numpy()
    present = truth.any(axis=0)
    if not present.any():
        raise ValueError("no class has a positive item: mAP is undefined")
    return float(average_precision_score(truth[:, present], scores.float().numpy()[:, present], average="macro"))


def retrieval_recall(queries: Tensor, gallery: Tensor, ks: Sequence[int] = (1, 5),
                     query_labels: Tensor | None = None, gallery_labels: Tensor | None = None) -> dict[int, float]:
    """Recall@k where query i's match is gallery item i (or, with labels, any item of the same label)."""
    similarity = queries.float() @ gallery.float().T
    top = similarity.topk(min(max(ks), len(gallery)), dim=-1).indices  # a k beyond the gallery: all of it
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
