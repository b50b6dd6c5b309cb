"""BindModel, embedding arithmetic/retrieval, embedding files, and the embed/search CLI (with a toy modality)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import bindcore
from bindcore import InputError, Modality, ModalityConfig
from bindcore.errors import ConfigError, NonFiniteError
from bindcore.inference import BindModel, compose, load_embeddings, save_embeddings, top_k
from bindcore.plugins import Registry, set_registry


class PointsConfig(ModalityConfig):
    width: int = 3
    dim: int = 4
    seed: int = 0


class Points(Modality):
    """Toy modality: an item is a list of ``width`` floats or a path to a file holding them comma-separated."""

    name = "points"
    Config = PointsConfig

    def __init__(self, config: PointsConfig | None = None, **options: Any):
        super().__init__(config, **options)
        gen = torch.Generator().manual_seed(self.config.seed)
        self.linear = nn.Linear(self.config.width, self.config.dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(self.config.dim, self.config.width, generator=gen))
            self.linear.bias.zero_()
        self.calls: list[int] = []

    @property
    def embed_dim(self) -> int:
        return self.config.dim

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = []
        for item in inputs:
            values = item
            if item == "crash":  # a plugin bug, not a bindcore.InputError
                raise RuntimeError("decoder exploded")
            if isinstance(item, (str, Path)):
                path = Path(item)
                if not path.is_file():
                    raise InputError(item, "file not found", fix="check the path")
                values = [float(v) for v in path.read_text().split(",")]
            if len(values) != self.config.width:
                raise InputError(item, f"expected {self.config.width} values, got {len(values)}")
            rows.append(torch.tensor(values, dtype=torch.float32))
        self.calls.append(len(inputs))
        return torch.stack(rows)

    def encode(self, x: Tensor) -> Tensor:
        return x

    def project(self, h: Tensor) -> Tensor:
        return F.normalize(self.linear(h), dim=-1)


class Other(Points):
    name = "other"


class _Plugin:
    @bindcore.hookimpl
    def register_modalities(self, register):
        register(Points)
        register(Other)


@pytest.fixture
def toy_registry():
    registry = Registry(load_entry_points=False)
    registry.add_plugin(_Plugin(), name="toy-points")
    previous = set_registry(registry)
    yield registry
    set_registry(previous)


def items(n: int, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)).round(3).tolist()


# -- BindModel ---------------------------------------------------------------------------------------------
def test_embed_returns_unit_rows_per_modality_and_batching_does_not_change_them() -> None:
    model = BindModel({"points": Points(), "other": Other(seed=1)})
    data = {"points": items(7), "other": items(3, seed=1)}
    small = model.embed(data, batch_size=2)
    big = model.embed(data, batch_size=100)
    assert small["points"].shape == (7, 4) and small["other"].shape == (3, 4)
    for name in data:
        assert torch.allclose(small[name], big[name], atol=1e-6)
        assert torch.allclose(small[name].norm(dim=-1), torch.ones(len(data[name])), atol=1e-5)
    direct = model["points"].embed(data["points"])
    assert torch.allclose(small["points"], direct, atol=1e-6)
    model["points"].calls.clear()
    model.embed({"points": items(5)}, batch_size=2)
    assert model["points"].calls == [2, 2, 1]


def test_progress_bar_for_long_inputs(capsys) -> None:
    model = BindModel([Points()], batch_size=1)
    model.embed({"points": items(3)}, progress=True)
    assert "embed points" in capsys.readouterr().err
    model.embed({"points": items(3)}, progress=False)
    assert "embed points" not in capsys.readouterr().err


def test_embed_fail_mode_names_the_bad_item() -> None:
    model = BindModel([Points()])
    with pytest.raises(InputError, match=r"expected 3 values, got 2"):
        model.embed({"points": [*items(2), [1.0, 2.0]]})
    with pytest.raises(ConfigError, match="no 'audio' modality"):
        model.embed({"audio": ["x.wav"]})


def test_unexpected_plugin_errors_name_the_item_or_are_skipped() -> None:
    model = BindModel([Points()])
    with pytest.raises(InputError, match=r"'crash'.*RuntimeError: decoder exploded"):
        model.embed({"points": [items(1)[0], "crash"]})
    result = model.embed_items("points", ["crash", items(1)[0]], on_error="skip")
    assert result.rows == [None, 0] and "decoder exploded" in result.errors[0]


def test_skip_mode_keeps_rows_aligned_and_reports_every_bad_item() -> None:
    model = BindModel([Points()])
    good = items(5)
    inputs = [good[0], [1.0], good[1], good[2], "missing.txt", good[3], good[4]]
    result = model.embed_items("points", inputs, batch_size=3, on_error="skip")
    assert result.rows == [0, None, 1, 2, None, 3, 4]
    assert result.skipped == [1, 4]
    assert "expected 3 values" in result.errors[1] and "file not found" in result.errors[4]
    expected = model["points"].embed(good)
    assert torch.allclose(result.embeddings, expected, atol=1e-6)


def test_non_finite_embeddings_fail_or_are_skipped() -> None:
    model = BindModel([Points()])
    inputs = [items(1)[0], [math.inf, 0.0, 0.0], items(1, seed=2)[0]]
    with pytest.raises(NonFiniteError, match="inf"):
        model.embed({"points": inputs})
    result = model.embed_items("points", inputs, on_error="skip")
    assert result.rows == [0, None, 1] and result.errors == {1: "non-finite embedding"}
    assert torch.isfinite(result.embeddings).all()


def test_all_items_skipped_gives_an_empty_matrix_of_the_right_width() -> None:
    result = BindModel([Points(dim=6)]).embed_items("points", [[1.0], "nope"], on_error="skip")
    assert result.embeddings.shape == (0, 6) and result.rows == [None, None]


def test_embed_follows_the_model_dtype() -> None:
    model = BindModel([Points()]).to(torch.float64)
    out = model.embed({"points": items(3)})["points"]
    assert out.dtype == torch.float64
    with pytest.raises(ConfigError, match="on_error"):
        model.embed_items("points", items(1), on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="batch_size"):
        BindModel([Points()], batch_size=0)


def test_load_reads_only_the_requested_modalities(toy_registry, tmp_path: Path, monkeypatch) -> None:
    Points(seed=3).save(tmp_path / "points")
    Other(seed=4).save(tmp_path / "other")
    import bindcore.io

    loaded: list[str] = []
    original = bindcore.io.load_modality
    monkeypatch.setattr(bindcore.io, "load_modality", lambda path, **kw: loaded.append(Path(path).name)
                        or original(path, **kw))
    model = BindModel.load(tmp_path, ["other"])
    assert model.names == ["other"] and loaded == ["other"]
    assert torch.allclose(model["other"].linear.weight, Other(seed=4).linear.weight)
    assert BindModel.load(tmp_path).names == ["other", "points"]
    assert BindModel.load(tmp_path / "points").names == ["points"]
    with pytest.raises(ConfigError, match="no saved modality 'audio'"):
        BindModel.load(tmp_path, ["audio"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no saved modalities"):
        BindModel.load(tmp_path / "empty")
    with pytest.raises(ConfigError, match="not a directory"):
        BindModel.load(tmp_path / "missing")


def test_for_modalities_builds_from_plugin_defaults_with_options(toy_registry) -> None:
    model = BindModel.for_modalities(["points"], options={"points": {"dim": 5}})
    assert model["points"].embed_dim == 5 and model.names == ["points"]


# -- arithmetic and retrieval ---------------------------------------------------------------------------
vectors = st.lists(st.floats(-10, 10, allow_nan=False), min_size=4, max_size=4).filter(
    lambda v: sum(x * x for x in v) > 1e-3)


@settings(max_examples=30, deadline=None)
@given(a=vectors, b=vectors, wa=st.floats(0.1, 3), wb=st.floats(0.1, 3))
def test_compose_normalises_scales_and_sums(a, b, wa, wb) -> None:
    ta, tb = torch.tensor(a), torch.tensor(b)
    raw = compose(ta, tb, weights=[wa, wb], normalize=False)
    assert torch.allclose(raw, wa * F.normalize(ta, dim=-1) + wb * F.normalize(tb, dim=-1), atol=1e-5)
    # scaling an input does not change the result: each term is normalised first
    assert torch.allclose(compose(ta * 7, tb), compose(ta, tb), atol=1e-5)
    out = compose(ta, tb, weights=[wa, wb])
    if raw.norm() > 1e-3:
        assert out.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_compose_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        compose()
    with pytest.raises(ConfigError, match="2 embeddings but 1 weights"):
        compose(torch.ones(3), torch.ones(3), weights=[1.0])


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), k=st.integers(1, 15), seed=st.integers(0, 1000))
def test_top_k_finds_the_query_itself_first(n, k, seed) -> None:
    corpus = F.normalize(torch.randn(n, 8, generator=torch.Generator().manual_seed(seed)), dim=-1)
    target = seed % n
    scores, indices = top_k(corpus[target][None] * 3, corpus, k)
    assert indices.shape == (1, min(k, n)) and indices[0, 0].item() == target
    assert scores[0, 0].item() == pytest.approx(1.0, abs=1e-5)
    assert torch.all(scores[0, :-1] >= scores[0, 1:])
    with pytest.raises(ConfigError, match="dimension"):
        top_k(torch.ones(1, 3), corpus, k)


def test_top_k_refuses_a_single_unbatched_query_with_the_fix() -> None:
    corpus = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    with pytest.raises(InputError) as info:
        top_k(corpus[1], corpus)
    assert "shape (8,)" in str(info.value) and "(Q, D)" in str(info.value) and "q[None]" in str(info.value)
    with pytest.raises(InputError, match=r"shape \(1, 4, 8\).*2-D \(Q, D\)"):
        top_k(corpus[None], corpus)
    with pytest.raises(InputError, match=r"shape \(8,\).*2-D \(N, D\) corpus"):
        top_k(corpus, corpus[0])
    assert top_k(corpus[1][None], corpus, 1)[1].tolist() == [[1]]


# -- embedding files -------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_save_and_load_embeddings_round_trip(tmp_path: Path, suffix: str) -> None:
    emb = F.normalize(torch.randn(2, 4), dim=-1)
    records = [{"input": "a", "row": 0}, {"input": "b", "row": None, "error": "bad"}, {"input": "c", "row": 1}]
    path, index = save_embeddings(tmp_path / f"e{suffix}", emb, records, modality="points")
    assert index == tmp_path / "e.jsonl"
    loaded, loaded_records = load_embeddings(path)
    assert torch.allclose(loaded, emb) and [r["input"] for r in loaded_records] == ["a", "b", "c"]
    assert all(r["modality"] == "points" for r in loaded_records)
    index.write_text(json.dumps({"input": "a", "row": 5}) + "\n")
    with pytest.raises(ConfigError, match="do not cover"):
        load_embeddings(path)
    with pytest.raises(ConfigError, match=r"\.npy or \.safetensors"):
        save_embeddings(tmp_path / "e.txt", emb, records, modality="points")



@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_a_failed_save_of_embeddings_keeps_the_previous_files(tmp_path: Path, suffix: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    emb = F.normalize(torch.randn(2, 4), dim=-1)
    path, index = save_embeddings(tmp_path / f"e{suffix}", emb, [{"input": "a", "row": 0}, {"input": "b", "row": 1}],
                                  modality="points")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    unserialisable = [{"input": "a", "row": 0}, {"input": object(), "row": 1}]  # the index write fails midway
    with pytest.raises(TypeError, match="not JSON serializable"):
        save_embeddings(path, emb * -1, unserialisable, modality="points")
    assert index.read_bytes() == before[index.name]  # the old index, whole
    assert sorted(before) == sorted(p.name for p in tmp_path.iterdir())  # no temporary left behind

    def half_written(handle: Any, *args: Any, **kwargs: Any) -> None:
        handle.write(b"\x93NUMPY half")
        raise OSError("No space left on device")

    path.write_bytes(before[path.name])  # the array itself was replaced by the (complete) new one above
    monkeypatch.setattr(np, "save", half_written)
    import bindcore.safetensors_io

    monkeypatch.setattr(bindcore.safetensors_io, "_write_payload", lambda handle, *a: half_written(handle))
    with pytest.raises(OSError, match="No space left"):
        save_embeddings(path, emb * -1, [{"input": "a", "row": 0}], modality="points")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # old array and index, no temporary


def _saved_with_recorded_anchor(folder: Path) -> Path:
    folder.mkdir(parents=True)
    meta = {"modality": "vision", "config": {"anchor": {"model": f"local-dir:{folder.parent / 'gone'}"}}}
    (folder / "bindcore.json").write_text(json.dumps(meta))
    return folder


def _anchor_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "open_clip_config.json").write_text("{}")
    return path


def test_a_moved_anchor_is_found_beside_the_modality_or_above_a_run_directory_only(tmp_path: Path) -> None:
    from bindcore.inference import _moved_anchor

    # `bindcore convert` output OUT/vision with OUT/anchor
    converted = _saved_with_recorded_anchor(tmp_path / "out" / "vision")
    beside = _anchor_folder(tmp_path / "out" / "anchor")
    assert _moved_anchor(converted) == {"anchor": {"model": f"local-dir:{beside.resolve()}"}}
    # a convert output whose grandparent holds someone else's anchor folder: left alone
    unrelated = _anchor_folder(tmp_path / "projects" / "anchor")
    elsewhere = _saved_with_recorded_anchor(tmp_path / "projects" / "modalities" / "vision")
    assert _moved_anchor(elsewhere) == {}
    # ... even beside a folder named "modalities" without a recipe: only a `bindcore train` run directory qualifies
    (tmp_path / "projects" / "recipe.yaml").write_text("seed: 0\n")
    assert _moved_anchor(elsewhere) == {"anchor": {"model": f"local-dir:{unrelated.resolve()}"}}
    plain = _saved_with_recorded_anchor(tmp_path / "other" / "converted" / "vision")
    _anchor_folder(tmp_path / "other" / "anchor")
    (tmp_path / "other" / "recipe.yaml").write_text("seed: 0\n")
    assert _moved_anchor(plain) == {}  # its parent is not RUN/modalities


# -- CLI -----------------------------------------------------------------------------------------------
def _write_points(folder: Path, rows: list[list[float]]) -> list[str]:
    paths = []
    for i, row in enumerate(rows):
        path = folder / f"p{i}.txt"
        path.write_text(",".join(map(str, row)))
        paths.append(str(path))
    return paths


def test_cli_embed_skip_writes_index_with_null_rows(toy_registry, tmp_path: Path) -> None:
    from bindcore.cli import cli

    Points(seed=5).save(tmp_path / "model" / "points")
    files = _write_points(tmp_path, items(3))
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2")
    inputs = [files[0], str(bad), files[1], str(tmp_path / "gone.txt"), files[2]]
    out = tmp_path / "emb.npy"
    result = CliRunner().invoke(cli, ["embed", "-m", "points", "--model", str(tmp_path / "model"), "--on-error",
                                      "skip", "--batch-size", "2", "--out", str(out), *inputs])
    assert result.exit_code == 0, result.output
    emb = np.load(out)
    records = [json.loads(line) for line in (tmp_path / "emb.jsonl").read_text().splitlines()]
    assert [r["input"] for r in records] == inputs
    assert [r["row"] for r in records] == [0, None, 1, None, 2]
    assert [r["status"] for r in records] == ["ok", "skipped", "ok", "skipped", "ok"]
    assert "expected 3 values" in records[1]["error"] and "file not found" in records[3]["error"]
    expected = Points(seed=5).embed([files[0], files[1], files[2]]).numpy()
    assert np.abs(emb - expected).max() < 1e-6

    failing = CliRunner().invoke(cli, ["embed", "-m", "points", "--model", str(tmp_path / "model"),
                                       "--out", str(tmp_path / "f.npy"), *inputs])
    assert failing.exit_code != 0 and "bad.txt" in failing.output and not (tmp_path / "f.npy").exists()


def test_cli_search_cross_modal_and_compose(toy_registry, tmp_path: Path) -> None:
    from bindcore.cli import cli

    Points(seed=6).save(tmp_path / "model" / "points")
    Other(seed=6).save(tmp_path / "model" / "other")  # same weights: "other" items land where "points" do
    rows = items(6, seed=3)
    files = _write_points(tmp_path, rows)
    runner = CliRunner()
    out = tmp_path / "corpus.safetensors"
    assert runner.invoke(cli, ["embed", "-m", "points", "--model", str(tmp_path / "model"), "--out", str(out),
                               *files]).exit_code == 0
    result = runner.invoke(cli, ["search", str(out), "--model", str(tmp_path / "model"), "-q", f"other={files[4]}",
                                 "-q", f"points={files[1]}", "-k", "2", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert [h["results"][0]["input"] for h in hits] == [files[4], files[1]]
    assert hits[0]["results"][0]["score"] == pytest.approx(1.0, abs=1e-5) and len(hits[0]["results"]) == 2
    composed = runner.invoke(cli, ["search", str(out), "--model", str(tmp_path / "model"), "-q", f"points={files[2]}",
                                   "-q", f"points={files[2]}", "--compose", "-k", "1", "--json"])
    assert json.loads(composed.output)[0]["results"][0]["input"] == files[2]
    usage = runner.invoke(cli, ["search", str(out)])
    assert usage.exit_code != 0 and "--query" in usage.output

    queries = tmp_path / "q.npy"  # saved query embeddings, without an index: labelled by row
    np.save(queries, Points(seed=6).embed([files[5], files[0]]).numpy())
    table = runner.invoke(cli, ["search", str(out), "--query-embeddings", str(queries), "-k", "1"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0] == "query: row 0" and lines[1].endswith(files[5]) and lines[3].endswith(files[0])
