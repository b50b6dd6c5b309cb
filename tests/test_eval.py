"""Eval metrics: zero-shot, retrieval, arithmetic, report table and plot."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bindcore.eval.metrics import arithmetic_top2, class_embeddings, combine, retrieval_recall, zero_shot_top1
from bindcore.eval.report import format_table, save_plot


def test_zero_shot_and_retrieval_on_known_embeddings():
    prototypes = torch.eye(4)
    labels = torch.tensor([0, 1, 2, 3, 0])
    embeddings = F.one_hot(torch.tensor([0, 1, 2, 0, 0]), 4).float()
    assert abs(zero_shot_top1(embeddings, prototypes, labels) - 0.8) < 1e-6
    query = torch.eye(3)
    gallery = torch.eye(3)[[1, 0, 2]]
    recall = retrieval_recall(query, gallery, (1, 2))
    assert abs(recall[1] - 1 / 3) < 1e-6 and recall[2] == 1.0


def test_class_embeddings_average_templates():
    def fake_text(texts):
        return torch.stack([torch.tensor([1.0, float(len(t))]) for t in texts])

    protos = class_embeddings(["a", "bbb"], ["{}", "x {}"], fake_text)
    assert protos.shape == (2, 2)
    assert torch.allclose(protos.norm(dim=-1), torch.ones(2))


def test_combine_and_arithmetic():
    a, b = torch.tensor([[1.0, 0, 0]]), torch.tensor([[0, 2.0, 0]])
    assert torch.allclose(combine(a, b), F.normalize(torch.tensor([[1.0, 1.0, 0]]), dim=-1))
    prototypes = torch.eye(3)
    x = torch.eye(3)
    labels = torch.arange(3)
    assert arithmetic_top2(x, labels, x, labels, prototypes, pairs=50) == 1.0


def test_table_and_plot(tmp_path):
    result = {"emergent": True, "pairing": {"audio": "image-paired"}, "zero_shot_top1": {"audio": 0.9},
              "anchor_zero_shot_top1": 0.95, "retrieval_r1": {"audio->depth": 0.4},
              "retrieval_r5": {"audio->depth": 0.8}, "retrieval_r1_same_concept": {"audio->depth": 0.9},
              "arithmetic_top2": {}, "num_eval_scenes": 10, "classes": ["a", "b"],
              "chance": {"zero_shot_top1": 0.5, "retrieval_r1": 0.1, "arithmetic_top2": 1.0}}
    table = format_table(result)
    assert "EMERGENT" in table and "90.0%" in table and "audio->depth" in table
    path = save_plot(result, ("audio", "depth", torch.eye(2)), tmp_path / "eval.png")
    assert path.stat().st_size > 1000
