"""Data: manifests (clear errors), the pure step plan, toy sources, seeded augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bindcore.data.batches import augment
from bindcore.data.plan import ModalityPlan, StepPlan
from bindcore.data.sources import ManifestSource, ToySource, read_manifest
from bindcore.errors import ConfigError
from bindcore.train.recipe import Augmentation
from bindcore.train.stubs import StubVision, make_feature_modality


def _write(tmp_path, rows, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_manifest_relative_paths_and_missing_files(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "a.wav").write_bytes(b"x")
    path = _write(tmp_path, [{"image": "a.png", "audio": "a.wav", "label": "dog"}])
    source = ManifestSource(path, "audio")
    item = source.load(0)
    assert item["image"] == str(tmp_path / "a.png") and item["label"] == 0
    bad = _write(tmp_path, [{"image": "a.png", "audio": "a.wav"}, {"image": "b.png", "audio": "a.wav"}], "bad.jsonl")
    with pytest.raises(ConfigError, match=r"bad.jsonl: 1 file\(s\) not found: line 2: image .*b.png"):
        read_manifest(bad, ("image", "audio"))


def test_manifest_missing_key_and_bad_json(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    path = _write(tmp_path, [{"image": "a.png"}])
    with pytest.raises(ConfigError, match=r":1: row has no 'audio'"):
        read_manifest(path, ("image", "audio"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"image": "a.png"\n')
    with pytest.raises(ConfigError, match=r"broken.jsonl:1: not valid JSON"):
        read_manifest(broken, ("image",))


def test_csv_manifest(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "a.npy").write_bytes(b"x")
    path = tmp_path / "pairs.csv"
    path.write_text("image,depth\na.png,a.npy\n")
    assert read_manifest(path, ("image", "depth"))[0]["depth"] == str(tmp_path / "a.npy")


def test_plan_is_pure_and_mixes_modalities():
    plans = [ModalityPlan("a", 50, 8, 1.0, 2), ModalityPlan("b", 30, 8, 2.0, 1)]
    first, second = StepPlan(plans, seed=3), StepPlan(plans, seed=3)
    assert len(first) == plans[0].total_steps + plans[1].total_steps
    for step in range(len(first)):
        a, b = first.step(step), second.step(step)
        assert a[0] == b[0] and a[1] == b[1] and np.array_equal(a[2], b[2])
    names = [first.step(s)[0] for s in range(len(first))]
    assert set(names[: len(names) // 2]) == {"a", "b"}  # interleaved, not one after the other
    other = StepPlan(plans, seed=4)
    assert not all(np.array_equal(first.step(s)[2], other.step(s)[2]) for s in range(len(first)))


def test_replication_scales_epoch():
    plan = ModalityPlan("depth", 10, 5, 50.0, 1)
    assert plan.samples_per_epoch == 500 and plan.steps_per_epoch == 100
    epoch = np.concatenate([plan.indices(0, k) for k in range(plan.steps_per_epoch)])
    assert np.bincount(epoch, minlength=10).tolist() == [50] * 10


def test_toy_source_deterministic():
    feature = make_feature_modality("toya")()
    source = ToySource(20, 1, {"image": StubVision(), "toya": feature})
    again = ToySource(20, 1, {"image": StubVision(), "toya": feature})
    assert np.array_equal(source.load(3)["image"], again.load(3)["image"])
    assert source.label(3) == source.scenes[3].concept
    assert source.fingerprint("image") != ToySource(20, 2, source.renderers).fingerprint("image")


def test_augment_is_seeded():
    x = torch.randn(4, 1, 8, 12)
    settings = Augmentation(freq_mask=3, time_mask=3, random_erase=1.0, color_jitter=0.2)
    a = augment(x, settings, torch.Generator().manual_seed(0))
    b = augment(x, settings, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and not torch.equal(a, x)


def test_webdataset_shards_random_access(tmp_path):
    import webdataset

    from bindcore.data.sources import ShardSource

    for shard in range(2):
        with webdataset.TarWriter(str(tmp_path / f"pairs-{shard:03d}.tar")) as sink:
            for item in range(3):
                sink.write({"__key__": f"s{shard}_{item}", "image.png": b"img%d" % item,
                            "audio.wav": b"wav%d%d" % (shard, item)})
    source = ShardSource(str(tmp_path / "pairs-{000..001}.tar"), "audio")
    assert len(source) == 6
    item = source.load(4)
    assert open(item["audio"], "rb").read() == b"wav11"
    assert open(item["image"], "rb").read() == b"img1"
    with pytest.raises(ConfigError, match="shard not found"):
        ShardSource(str(tmp_path / "pairs-{000..002}.tar"), "audio")
