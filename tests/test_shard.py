"""``bindcore shard``: a manifest written into WebDataset shards gives the same batches as the manifest itself, raw
or preprocessed, indexed or streamed; an interrupted run resumes without rewriting finished shards; preprocessed
shards made by another plugin config are refused, naming the differing keys."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from bindcore.data.shard_index import INDEX_FILE, ShardIndex
from bindcore.errors import ConfigError
from bindcore.plugins import Registry, get_registry, set_registry
from bindcore.recipe import load_recipe
from bindcore.testing.stubs import FeatureModality, StubPlugin, StubText, StubVision, tiny_recipe


class ScaledToy(FeatureModality):
    """A toy modality whose preprocessing changes the values (so preprocessing twice, or not at all, shows)."""

    name = "toya"
    calls = 0

    def preprocess(self, inputs):
        ScaledToy.calls += 1
        return super().preprocess(inputs) * 2 + 1


@pytest.fixture
def stubs():
    registry = Registry(load_entry_points=False)
    registry.add_plugin(StubPlugin(StubVision, StubText, ScaledToy), name="stubs", version="0")
    previous = set_registry(registry)
    yield
    set_registry(previous)


def _manifest_recipe(tmp_path: Path, rows: int = 40) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for row in range(rows):
        np.save(folder / f"{row}.image.npy", rng.random((3, 16, 16), dtype=np.float32))
        np.save(folder / f"{row}.toya.npy", rng.standard_normal(16).astype(np.float32))
        lines.append(json.dumps({"image": f"{row}.image.npy", "toya": f"{row}.toya.npy"}))
    (folder / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    raw = tiny_recipe("toya", steps_epochs=2)
    raw["modalities"]["toya"]["train"]["batch_size"] = 8
    raw["modalities"]["toya"]["train"]["augmentation"] = {"gaussian_noise": 0.05, "color_jitter": 0.1}
    raw["modalities"]["toya"]["data"] = {"kind": "manifest", "manifest": "data/pairs.jsonl"}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    return recipe


def _shard(recipe: Path, out: Path, *extra: str) -> None:
    from bindcore.cli import cli

    result = CliRunner().invoke(cli, ["shard", str(recipe), "--modality", "toya", "--out", str(out),
                                      "--shard-size", "8KB", "--no-progress", *extra])
    assert result.exit_code == 0, result.output


def _batches(recipe_path: Path, data: dict | None = None, steps: int = 10, plan=None) -> tuple[list[dict], object]:
    """The first ``steps`` batches training builds from the recipe (optionally with another data block, or another
    step plan), and the plan."""
    from bindcore.data.batches import StepBatches
    from bindcore.data.plan import StepPlan
    from bindcore.data.shard import input_preprocessor
    from bindcore.data.stream import modality_plan
    from bindcore.run_setup import Context, RunSetup

    overrides = [f"modalities.toya.data={json.dumps(data)}"] if data else []
    recipe = load_recipe(recipe_path, overrides=overrides)
    setup = RunSetup(recipe, recipe_path.parent / "run", prepare=False, context=Context(torch.device("cpu")))
    block = recipe.modalities["toya"]
    module = get_registry().get("toya")(block.config)
    source = setup.source("toya", module)
    plan = plan or StepPlan([modality_plan("toya", source, block, world_size=1, workers=0)], seed=0)
    batches = StepBatches(plan, {"toya": source}, {"toya": input_preprocessor(source, module)},
                          image_preprocessor=get_registry().get("vision")(image_size=16),
                          augmentations={"toya": block.train.augmentation}, seed=0)
    return [batches[step] for step in range(steps)], plan


def _same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["indices"], y["indices"])
        assert torch.equal(x["inputs"], y["inputs"]) and torch.equal(x["images"], y["images"])


@pytest.mark.parametrize("preprocessed", [False, True], ids=["raw", "preprocessed"])
def test_shards_give_the_same_batches_as_their_source(stubs, tmp_path, preprocessed):
    recipe = _manifest_recipe(tmp_path)
    out = tmp_path / "shards"
    _shard(recipe, out, *(["--preprocessed"] if preprocessed else []))
    index = ShardIndex.load(out / INDEX_FILE)
    assert index.total == 40 and len(index.items) > 2 and index.preprocessed is preprocessed
    members = sorted(p.name for p in out.glob("*.tar"))
    assert members == sorted(index.items)
    pattern = str(out / f"toya-{{000000..{len(members) - 1:06d}}}.tar")
    reference, _ = _batches(recipe)
    ScaledToy.calls = 0
    indexed, _ = _batches(recipe, {"kind": "webdataset", "shards": pattern})
    assert (ScaledToy.calls == 0) is preprocessed  # preprocessed shards skip the plugin's preprocessing
    _same(reference, indexed)  # indexed shards: the manifest's plan and batches
    # streamed: a sequential plan of its own; the manifest read in that plan's order gives the same batches
    stream = {"kind": "webdataset", "mode": "stream", "shards": pattern, "shuffle_buffer": 8}
    streamed, plan = _batches(recipe, stream, steps=5)
    assert len({int(i) for b in streamed for i in b["indices"]}) == 40  # one epoch reads every sample once
    _same(_batches(recipe, steps=5, plan=plan)[0], streamed)


def test_an_interrupted_run_resumes_without_rewriting_finished_shards(stubs, tmp_path, monkeypatch):
    import bindcore.data.shard as shard_module

    recipe = _manifest_recipe(tmp_path)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    _shard(recipe, whole)
    real_write = shard_module._write_tar
    calls = []

    def interrupted(path, samples):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed while writing the third shard
        real_write(path, samples)

    monkeypatch.setattr(shard_module, "_write_tar", interrupted)
    with pytest.raises(KeyboardInterrupt):
        shard_module.write_shards(*_source(recipe), resumed, shard_size=8000, progress=False, log=lambda _m: None)
    monkeypatch.setattr(shard_module, "_write_tar", real_write)
    assert json.loads((resumed / INDEX_FILE).read_text())["complete"] is False
    kept = {p.name: p.stat().st_mtime_ns for p in resumed.glob("*.tar")}
    assert len(kept) == 2 and not list(resumed.glob(".*"))  # no half-written shard left
    messages = []
    shard_module.write_shards(*_source(recipe), resumed, shard_size=8000, progress=False, log=messages.append)
    assert any("resuming after 2 finished shard(s)" in m for m in messages)
    assert {p.name: p.stat().st_mtime_ns for p in resumed.glob("*.tar") if p.name in kept} == kept
    for path in whole.glob("*.tar"):
        assert (resumed / path.name).read_bytes() == path.read_bytes()
    assert json.loads((resumed / INDEX_FILE).read_text())["complete"] is True


def _source(recipe: Path):
    from bindcore.commands.shard import _source as command_source

    source, module = command_source(load_recipe(recipe), "toya")
    return source, "toya", module


def test_preprocessed_shards_of_another_config_are_refused_naming_the_keys(stubs, tmp_path):
    recipe = _manifest_recipe(tmp_path)
    _shard(recipe, tmp_path / "shards", "--preprocessed")
    last = len(ShardIndex.load(tmp_path / "shards" / INDEX_FILE).items) - 1
    data = {"kind": "webdataset", "mode": "stream", "shards": f"shards/toya-{{000000..{last:06d}}}.tar"}
    raw = yaml.safe_load(recipe.read_text())
    raw["modalities"]["toya"]["data"] = data
    raw["modalities"]["toya"]["width"] = 24  # another plugin config than the shards were made with
    recipe.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"preprocessed with another config.*width \(32 in the shards, 24 now\)"):
        _batches(recipe, steps=1)
    raw["modalities"]["toya"]["width"] = 32
    recipe.write_text(yaml.safe_dump(raw))
    assert _batches(recipe, steps=1)[0][0]["inputs"].shape == (8, 16)  # the same config: accepted


def test_index_only_counts_existing_shards(stubs, tmp_path):
    from bindcore.cli import cli

    recipe = _manifest_recipe(tmp_path)
    _shard(recipe, tmp_path / "shards")
    written = ShardIndex.load(tmp_path / "shards" / INDEX_FILE)
    (tmp_path / "shards" / INDEX_FILE).unlink()
    raw = yaml.safe_load(recipe.read_text())
    last = len(written.items) - 1
    raw["modalities"]["toya"]["data"] = {"kind": "webdataset", "mode": "stream",
                                         "shards": f"shards/toya-{{000000..{last:06d}}}.tar"}
    recipe.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(cli, ["shard", str(recipe), "--modality", "toya", "--index-only", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert ShardIndex.load(tmp_path / "shards" / INDEX_FILE).items == written.items
