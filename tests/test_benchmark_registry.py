"""The benchmark registry (plugins' ``register_benchmarks`` hooks, the core's built-ins) and the new metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bindcore.errors import ConfigError
from bindcore.eval.benchmarks.registry import UnknownBenchmarkError, collect_benchmarks
from bindcore.eval.benchmarks.spec import Benchmark, Classification
from bindcore.eval.metrics import (
    class_embeddings,
    class_scores,
    mean_average_precision,
    retrieval_recall,
    top_k_accuracy,
    zero_shot_top1,
)
from bindcore.hookspecs import hookimpl
from bindcore.plugins import Registry


def _bench(name: str) -> Benchmark:
    def read(root: Path, options: object) -> Classification:
        return Classification(items=[], labels=[], class_names=[], sources=[])

    return Benchmark(name=name, modality="audio", task="zero_shot", metrics=("top1",), layout="x", protocol="y",
                     read=read)


class Provides:
    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def register_benchmarks(self, register):
        for name in self.names:
            register(_bench(name))


class Raises:
    @hookimpl
    def register_benchmarks(self, register):
        register(_bench("half"))  # registered before the failure: must not be kept
        raise RuntimeError("dataset index unreachable")


class Exits:
    @hookimpl
    def register_benchmarks(self, register):
        raise SystemExit(3)


class NotABenchmark:
    @hookimpl
    def register_benchmarks(self, register):
        register({"name": "dict"})


def _registry(**plugins: object) -> Registry:
    registry = Registry(load_entry_points=False)
    for name, plugin in plugins.items():
        registry.add_plugin(plugin, name=name.replace("_", "-"), version="1.0")
    return registry


def test_builtins_register_through_the_hook_and_plugins_add_theirs():
    benchmarks = collect_benchmarks(_registry(bind_a=Provides("esc50", "clotho")))
    assert benchmarks.names() == ["clotho", "esc50", "labelled", "pairs"]
    assert benchmarks.owners["labelled"] == "bindcore" and benchmarks.owners["esc50"] == "bind-a"
    assert benchmarks.failures == {}


def test_a_duplicate_name_is_refused_naming_both_plugins():
    plugins = _registry(bind_a=Provides("esc50"), bind_b=Provides("esc50", "vggsound"), bind_c=Provides("pairs"))
    benchmarks = collect_benchmarks(plugins)
    assert benchmarks.owners["esc50"] == "bind-a" and "vggsound" in benchmarks.names()
    (message,) = benchmarks.failures["bind-b"]
    assert "'esc50' is already provided by bind-a" in message and "bind-b" in message
    assert "'pairs' is already provided by bindcore" in benchmarks.failures["bind-c"][0]
    assert benchmarks.owners["pairs"] == "bindcore"
    # the refusal is shown by `bindcore plugins` too
    info = {p.name: p for p in plugins.plugins()}
    assert "already provided by bind-a" in info["bind-b"].error


def test_a_failing_plugin_is_reported_and_the_others_still_load():
    plugins = _registry(bind_bad=Raises(), bind_exit=Exits(), bind_odd=NotABenchmark(), bind_ok=Provides("esc50"))
    benchmarks = collect_benchmarks(plugins)
    assert benchmarks.names() == ["esc50", "labelled", "pairs"]  # nothing of bind-bad, not even "half"
    assert "RuntimeError: dataset index unreachable" in benchmarks.failures["bind-bad"][0]
    assert "SystemExit" in benchmarks.failures["bind-exit"][0]
    assert "takes a bindcore.eval.benchmarks.spec.Benchmark, got dict" in benchmarks.failures["bind-odd"][0]
    with pytest.raises(UnknownBenchmarkError) as caught:
        benchmarks.get("esc-50")
    message = str(caught.value)
    assert "no benchmark named 'esc-50'. Did you mean 'esc50'?" in message
    assert "Known: esc50, labelled, pairs" in message and "bind-bad: register_benchmarks failed" in message
    assert isinstance(caught.value, ConfigError)


def test_class_embeddings_with_several_names_score_the_best_name():
    vocabulary = ["street", "road", "person", "man"]

    def encode(texts):
        return torch.stack([F.one_hot(torch.tensor(vocabulary.index(t)), 4).float() for t in texts])

    single = class_embeddings(["street", "person"], ["{}"], encode)
    assert single.shape == (2, 4)  # unchanged for one name per class
    several = class_embeddings([["street", "road"], ["person", "man", "man"]], ["{}"], encode)
    assert several.shape == (2, 3, 4)
    rows = torch.tensor([[0.0, 0.9, 0.1, 0.0], [0.0, 0.3, 0.0, 0.95]])
    scores = class_scores(rows, several)
    assert torch.allclose(scores, torch.tensor([[0.9, 0.1], [0.3, 0.95]]))  # max over the class's names
    assert zero_shot_top1(rows, several, torch.tensor([0, 1])) == 1.0
    assert zero_shot_top1(rows[:1], single, torch.tensor([0])) == 0.0  # with "street" alone, row 0 is a person


def test_top_k_and_map_against_hand_computed_values():
    scores = torch.tensor([[0.9, 0.2, 0.0], [0.8, 0.1, 0.5], [0.3, 0.9, 0.2], [0.1, 0.5, 0.4]])
    labels = torch.tensor([0, 2, 0, 1])
    assert top_k_accuracy(scores, labels, 1) == pytest.approx(0.5)  # rows 0 and 3
    assert top_k_accuracy(scores, labels, 2) == pytest.approx(1.0)
    assert top_k_accuracy(scores, labels, 10) == 1.0
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    tag_scores = torch.tensor([[0.9, 0.2, 0.0], [0.8, 0.1, 0.1], [0.3, 0.9, 0.2], [0.1, 0.5, 0.4]])
    # class 0: ranking pos, neg, pos, neg → AP (1 + 2/3)/2; class 1: its positive ranks 4th → 1/4; class 2 has none
    assert mean_average_precision(tag_scores, targets) == pytest.approx(((1 + 2 / 3) / 2 + 1 / 4) / 2)


def test_retrieval_recall_with_a_relevant_index_and_a_small_gallery():
    gallery = torch.eye(3)
    queries = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0, 0, 1.0]])
    relevant = torch.tensor([0, 1, 2])  # query 1 finds gallery 0 first, gallery 1 second
    recall = retrieval_recall(queries, gallery, (1, 2, 10), relevant, torch.arange(3))
    assert recall == {1: pytest.approx(2 / 3), 2: 1.0, 10: 1.0}


def test_emergent_is_read_from_the_model_directory(tmp_path):
    from bindcore.eval.benchmarks.provenance import binding_of

    converted = tmp_path / "converted"
    (converted / "audio").mkdir(parents=True)
    (converted / "conversion.json").write_text("{}")
    emergent, basis = binding_of(converted, "audio")
    assert emergent is True and "ImageBind" in basis
    assert binding_of(converted, "text")[0] is False  # the anchor's own tower: text-paired
    bare = tmp_path / "bare"
    bare.mkdir()
    assert binding_of(bare, "audio")[0] is None
