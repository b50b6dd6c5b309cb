"""``bindcore benchmark`` end to end on the core's ``labelled`` and ``pairs`` benchmarks, with modalities whose
embeddings are known (:mod:`bindcore.testing.known_modalities`), so every metric is computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bindcore.cli import cli
from bindcore.errors import ConfigError, InputError
from bindcore.eval.benchmarks.run import run_benchmark
from bindcore.plugins import set_registry
from bindcore.testing.known_modalities import VOCAB, known_registry, save_model, write_jsonl, write_vector

ONE_TEMPLATE = ["a photo of a {}."]


def unit(word: str) -> list[float]:
    return [1.0 if w == word else 0.0 for w in VOCAB]


@pytest.fixture
def known(tmp_path):
    previous = set_registry(known_registry())
    yield save_model(tmp_path / "model")
    set_registry(previous)


def labelled_manifest(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    rows = [{"vec": write_vector(data / f"dog{i}.npy", unit("dog")), "label": "dog"} for i in range(3)]
    rows += [{"vec": write_vector(data / "cat0.npy", unit("cat")), "label": "cat"},
             {"vec": write_vector(data / "cat1.npy", unit("bird")), "label": "cat"},  # a wrong prediction
             {"vec": write_vector(data / "bird0.npy", unit("bird")), "label": "bird"},
             {"vec": "data/missing.npy", "label": "dog"}]
    (data / "corrupt.npy").write_bytes(b"not a numpy file")
    rows.append({"vec": "data/corrupt.npy", "label": "bird"})
    rows[0]["vec"] = "data/dog0.npy"  # relative to the manifest's folder
    return write_jsonl(tmp_path / "labelled.jsonl", rows)


def test_labelled_scores_lists_bad_files_and_writes_json_and_png(known, tmp_path):
    manifest = labelled_manifest(tmp_path)
    out = tmp_path / "out"
    result = run_benchmark("labelled", manifest, known, modality="vec", out=out, templates=ONE_TEMPLATE,
                           log=lambda _m: None, progress=False)
    assert result["metrics"]["top1"] == pytest.approx(5 / 6)
    assert result["metrics"]["top5"] == 1.0  # three classes: every label is in the top 5
    assert result["num_items"] == 6 and result["num_classes"] == 3
    assert result["num_problems"] == 2
    reasons = {p["source"]: p["reason"] for p in result["problems"]}
    assert any("missing.npy" in reason and "not found" in reason for reason in reasons.values())
    assert any("corrupt.npy" in source and "not a .npy file" in reason for source, reason in reasons.items())
    assert result["emergent"] is None and "unknown" in result["emergent_basis"]  # a bare saved-modality folder
    assert json.loads((out / "labelled.json").read_text()) == result
    assert (out / "labelled.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_labelled_needs_its_modality_and_refuses_unknown_options(known, tmp_path):
    manifest = labelled_manifest(tmp_path)
    with pytest.raises(ConfigError, match="--modality"):
        run_benchmark("labelled", manifest, known, log=lambda _m: None)
    with pytest.raises(ConfigError, match=r"labl: unknown key, did you mean label\?"):
        run_benchmark("labelled", manifest, known, modality="vec", options={"labl": "x"}, log=lambda _m: None)
    with pytest.raises(InputError, match="manifest not found"):
        run_benchmark("labelled", tmp_path / "nope.jsonl", known, modality="vec", log=lambda _m: None)


def test_labelled_folds_are_averaged_per_fold(known, tmp_path):
    data = tmp_path / "data"
    # fold 1: 2 of 2 right; fold 2: 1 of 4 right -> per-fold average 0.625, pooled 0.5
    rows = [{"vec": write_vector(data / "a.npy", unit("dog")), "label": "dog", "fold": 1},
            {"vec": write_vector(data / "b.npy", unit("cat")), "label": "cat", "fold": 1},
            {"vec": write_vector(data / "c.npy", unit("dog")), "label": "dog", "fold": 2}]
    rows += [{"vec": write_vector(data / f"w{i}.npy", unit("dog")), "label": "cat", "fold": 2} for i in range(3)]
    manifest = write_jsonl(tmp_path / "folds.jsonl", rows)
    result = run_benchmark("labelled", manifest, known, modality="vec", templates=ONE_TEMPLATE,
                           log=lambda _m: None)
    assert result["per_fold"] == {"1": {"top1": 1.0, "top5": 1.0}, "2": {"top1": 0.25, "top5": 1.0}}
    assert result["metrics"]["top1"] == pytest.approx(0.625)


def pairs_manifest(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    files = {"dog": unit("dog"), "cat": unit("cat"), "bird": unit("bird"), "dog2": [0.8, 0, 0, 0.6],
             "fishy": [0.6, 0, 0, 0.8]}
    path = {name: write_vector(data / f"{name}.npy", vector) for name, vector in files.items()}
    rows = [{"text": "a dog barks", "vec": path["dog"]}, {"text": "the cat sleeps", "vec": path["cat"]},
            {"text": "a bird sings", "vec": path["bird"]}, {"text": "a cat again", "vec": path["cat"]},
            {"text": "a dog runs", "vec": path["dog2"]},  # dog.npy ranks first: found at rank 2
            {"text": "fish swim", "vec": path["fishy"]},
            {"text": "a dog", "vec": "data/gone.npy"},  # missing gallery file
            {"text": "hello there", "vec": path["dog"]}]  # a query the text modality cannot embed
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


def test_pairs_retrieval_recall_by_hand(known, tmp_path):
    out = tmp_path / "out"
    result = run_benchmark("pairs", pairs_manifest(tmp_path), known, modality="vec", out=out, log=lambda _m: None)
    assert result["task"] == "retrieval" and result["query_modality"] == "text"
    assert result["num_gallery"] == 5  # cat.npy is one gallery item for its two captions
    assert result["num_items"] == 6
    assert result["metrics"] == {"R@1": pytest.approx(5 / 6), "R@5": 1.0, "R@10": 1.0}
    assert result["num_problems"] == 2
    assert any("gone.npy" in p["reason"] for p in result["problems"])
    assert any("hello there" in p["source"] for p in result["problems"])
    assert (out / "pairs.png").stat().st_size > 1000


def test_cli_json_table_and_errors(known, tmp_path):
    manifest = labelled_manifest(tmp_path)
    templates = tmp_path / "templates.txt"
    templates.write_text("a photo of a {}.\n")
    runner = CliRunner()
    args = ["benchmark", "labelled", str(manifest), "--model", str(known), "--modality", "vec",
            "--out", str(tmp_path / "out"), "--templates", str(templates)]
    done = runner.invoke(cli, [*args, "--json"])
    assert done.exit_code == 0, done.output
    parsed = json.loads(done.stdout)
    assert parsed["benchmark"] == "labelled" and parsed["metrics"]["top1"] == pytest.approx(5 / 6)
    table = runner.invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "top1" in table.stdout and "83.3%" in table.stdout and "2 problem(s)" in table.stdout
    unknown = runner.invoke(cli, ["benchmark", "esc5O", str(manifest), "--model", str(known)])
    assert unknown.exit_code != 0 and "no benchmark named 'esc5O'" in unknown.output
    assert "labelled" in unknown.output and "pairs" in unknown.output
    bad = runner.invoke(cli, [*args, "-o", "colour", "red"])
    assert bad.exit_code != 0 and "colour: unknown key" in bad.output and "valid keys: label, modality" in bad.output


def test_list_names_every_benchmark_with_task_metric_layout_and_paper(known):
    done = CliRunner().invoke(cli, ["benchmark", "--list", "--json"])
    assert done.exit_code == 0, done.output
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert {"labelled", "pairs"} <= set(rows)
    assert rows["pairs"]["task"] == "retrieval" and rows["pairs"]["metrics"] == ["R@1", "R@5", "R@10"]
    assert "manifest" in rows["labelled"]["layout"] and rows["labelled"]["provided_by"] == "bindcore"
    text = CliRunner().invoke(cli, ["benchmark", "--list"]).stdout
    assert "labelled  [zero_shot" in text and "layout:" in text and "paper:" in text


def few_shot_manifest(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for word in VOCAB[:3]:
        for i in range(10):
            vector = np.asarray(unit(word)) + rng.normal(0, 0.1, len(VOCAB))
            rows.append({"vec": write_vector(tmp_path / "fs" / f"{word}{i}.npy", vector), "label": word,
                         "fold": i % 5 + 1})
    return write_jsonl(tmp_path / "fewshot.jsonl", rows)


def test_few_shot_uses_the_same_items_for_every_model(known, tmp_path):
    manifest = few_shot_manifest(tmp_path)
    rotated = save_model(tmp_path / "rotated", rotation_seed=7)
    runs = [run_benchmark("labelled", manifest, model, modality="vec", shots=[1, 2], seeds=3,
                          templates=ONE_TEMPLATE, log=lambda _m: None) for model in (known, rotated)]
    first, second = (run["few_shot"] for run in runs)
    assert runs[0]["metrics"]["top1"] == 1.0 and runs[1]["metrics"]["top1"] < 1.0  # two different models
    for k in ("1", "2"):
        assert first["shots"][k]["subset_digest"] == second["shots"][k]["subset_digest"]
        assert len(set(first["shots"][k]["subset_digest"])) == 3  # each seed draws its own items
        assert 0.0 <= first["shots"][k]["top1_mean"] <= 1.0
    assert first["test_fold"] == 1 and first["train_folds"] == [2, 3, 4, 5] and first["num_test_items"] == 6
    assert first["shots"]["2"]["top1_mean"] == 1.0  # well-separated classes: two shots suffice
    with pytest.raises(ConfigError, match="--shots needs a single-label classification"):
        run_benchmark("pairs", pairs_manifest(tmp_path), known, modality="vec", shots=[1], log=lambda _m: None)
