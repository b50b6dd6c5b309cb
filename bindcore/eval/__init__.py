"""Evaluation: emergent zero-shot classification, cross-modal retrieval, embedding arithmetic, reports."""

from bindcore.eval.metrics import (
    arithmetic_top2,
    class_embeddings,
    combine,
    retrieval_recall,
    zero_shot_top1,
)

__all__ = ["arithmetic_top2", "class_embeddings", "combine", "retrieval_recall", "zero_shot_top1"]
