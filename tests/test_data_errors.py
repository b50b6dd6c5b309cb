"""Bad data in a training run: a bad item is named (manifest line, shard sample) or skipped deterministically,
``--check`` reads every row and shard before any work, oversized batches are refused, shard members are extracted
safely into a folder that goes away, and the process group gets the recipe's timeout. Stub modalities, tiny sizes."""

from __future__ import annotations

import datetime
import gc
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file

from bindcore.errors import ConfigError, InputError
from bindcore.plugins import set_registry
from bindcore.recipe import load_recipe, validate_recipe
from bindcore.testing.stubs import stub_registry, tiny_recipe
from bindcore.train.trainer import train


def _arrays(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.random((3, 16, 16), dtype=np.float32), rng.standard_normal(16).astype(np.float32)


def _manifest_recipe(tmp_path: Path, rows: int = 32, *, bad: dict[int, str] | None = None,
                     epochs: float = 2, **data) -> Path:
    """A recipe training ``toya`` from a JSONL manifest of ``.npy`` pairs; ``bad``: row number → what is wrong
    with its toya file ("empty" file, or a "directory")."""
    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for row in range(1, rows + 1):
        image, features = _arrays(rng)
        np.save(folder / f"{row}.image.npy", image)
        toya = folder / f"{row}.toya.npy"
        kind = (bad or {}).get(row)
        if kind == "empty":
            toya.write_bytes(b"")
        elif kind == "directory":
            toya.mkdir()
        elif kind == "short":
            np.save(toya, features[:5])
        else:
            np.save(toya, features)
        lines.append(json.dumps({"image": f"{row}.image.npy", "toya": toya.name}))
    (folder / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    raw = tiny_recipe("toya", steps_epochs=epochs)
    raw["modalities"]["toya"]["data"] = {"kind": "manifest", "manifest": "data/pairs.jsonl", **data}
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    return recipe


def _quiet(_message: str) -> None:
    return None


# -- one bad file ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [0, 1])
def test_a_bad_file_stops_the_run_naming_the_manifest_line_and_the_file(stubs, tmp_path, workers):
    recipe = _manifest_recipe(tmp_path, bad={7: "empty"})
    with pytest.raises(InputError) as info:
        train(load_recipe(recipe, overrides=[f"data.workers={workers}"]), tmp_path / "run", log=_quiet)
    message = str(info.value)
    # the message comes first (not a RuntimeError wrapping a worker's traceback) and names line, file and fix
    assert message.startswith(repr(str(tmp_path / "data" / "7.toya.npy")))
    assert f"{tmp_path / 'data' / 'pairs.jsonl'}:7" in message
    assert "toya" in message and "on_error: skip" in message
    assert "Traceback" not in message


def test_a_plugin_input_error_is_named_once_with_its_reason(stubs, tmp_path):
    recipe = _manifest_recipe(tmp_path, bad={4: "short"})
    with pytest.raises(InputError) as info:
        train(load_recipe(recipe), tmp_path / "run", log=_quiet)
    message = str(info.value)
    assert "pairs.jsonl:4 (the image–toya pair of step " in message
    assert "cannot be used: expected 16 finite floats" in message
    assert message.count("4.toya.npy") == 1  # the plugin's own naming of the file is not repeated


def test_a_directory_given_as_a_file_is_listed_before_any_work(stubs, tmp_path):
    recipe = _manifest_recipe(tmp_path, bad={3: "directory"})
    with pytest.raises(ConfigError, match=r"pairs\.jsonl:3: toya is a directory, not a file: .*3\.toya\.npy"):
        load_recipe(recipe)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "modalities" / "toya" / "model.safetensors"))


def test_skip_replaces_bad_items_deterministically_and_lists_each_once(stubs, tmp_path):
    recipe = _manifest_recipe(tmp_path, bad={5: "empty", 20: "empty"}, epochs=3, on_error="skip",
                              max_skipped="10%")
    logs: list[str] = []
    train(load_recipe(recipe), tmp_path / "a", log=logs.append)
    train(load_recipe(recipe, overrides=["data.workers=1"]), tmp_path / "b", log=_quiet)
    records = [json.loads(line) for line in (tmp_path / "a" / "skipped.jsonl").read_text().splitlines()]
    manifest = tmp_path / "data" / "pairs.jsonl"
    assert sorted(r["where"] for r in records) == [f"{manifest}:20", f"{manifest}:5"]  # once each, over 3 epochs
    assert all(r["item"].endswith(".toya.npy") and r["reason"] and r["substitute"] not in (4, 19) for r in records)
    skipped_logs = [line for line in logs if line.startswith("skipped ")]
    assert len(skipped_logs) == 2 and f"{manifest}:5" in " ".join(skipped_logs)
    # the same substitutes in the main process and in a worker: identical weights
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert (tmp_path / "b" / "skipped.jsonl").read_text().count("\n") == 2


def test_skip_keeps_every_rank_batch_full_and_free_of_repeats(stubs, tmp_path):
    from bindcore.data.batches import StepBatches
    from bindcore.data.plan import ModalityPlan, StepPlan
    from bindcore.data.sources import ManifestSource
    from bindcore.testing.stubs import StubVision, make_feature_modality

    _manifest_recipe(tmp_path, rows=16, bad={row: "empty" for row in range(1, 9)})
    source = ManifestSource(tmp_path / "data" / "pairs.jsonl", "toya")
    plan = StepPlan([ModalityPlan("toya", 16, 16, 1.0, 1.0)], seed=0)
    batches = []
    for rank in range(2):
        dataset = StepBatches(plan, {"toya": source}, {"toya": make_feature_modality("toya")()},
                              image_preprocessor=StubVision(), augmentations={}, seed=0, rank=rank, world_size=2,
                              on_error={"toya": "skip"})
        batches.append(dataset[0])
    indices = [int(i) for batch in batches for i in batch["indices"]]
    assert [len(batch["inputs"]) for batch in batches] == [8, 8]
    assert all(len(batch["images"]) == 8 for batch in batches)
    assert sum(len(batch["skipped"]) for batch in batches) == 8  # rows 1-8 are the bad half
    assert all(i >= 8 for i in indices)  # only good items, each substitute distinct within its rank's batch
    assert all(len(set(map(int, batch["indices"]))) == 8 for batch in batches)


def test_more_skipped_than_max_skipped_stops_the_run(stubs, tmp_path):
    recipe = _manifest_recipe(tmp_path, bad={2: "empty", 9: "empty"}, on_error="skip", max_skipped="1%")
    with pytest.raises(ConfigError, match=r"modalities\.toya\.data: 1 of its 32 items were skipped .*skipped\.jsonl"
                                          r".*max_skipped 0\.01 allows \(0 items\)"):
        train(load_recipe(recipe), tmp_path / "run", log=_quiet)
    assert (tmp_path / "run" / "skipped.jsonl").read_text().count("\n") == 1


def test_a_resume_keeps_the_skips_before_its_checkpoint_and_counts_them(tmp_path):
    from bindcore.data.skips import SkippedItems

    def record(index: int, step: int) -> dict:
        return {"modality": "toya", "index": index, "step": step, "where": f"m.jsonl:{index + 1}", "key": "toya",
                "item": f"{index}.npy", "reason": "empty", "substitute": 0}

    path = tmp_path / "skipped.jsonl"
    first = SkippedItems(path, {"toya": (0.1, 30)}, log=_quiet)
    first.add([record(3, 2), record(3, 4)])  # the same item twice: listed once
    first.add([record(8, 7)])
    with path.open("a") as handle:
        handle.write('{"modality": "toya", "ind')  # cut short by a kill
    resumed = SkippedItems(path, {"toya": (0.1, 30)}, log=_quiet, resume_step=5)  # checkpoint at step 5
    assert [json.loads(line)["index"] for line in path.read_text().splitlines()] == [3]
    resumed.add([record(8, 7), record(11, 9)])  # step 7 is replayed, 3 distinct items: the limit allows 3
    with pytest.raises(ConfigError, match=r"4 of its 30 items were skipped"):
        resumed.add([record(12, 10)])
    SkippedItems(path, {"toya": (0.1, 30)}, log=_quiet)  # a fresh start forgets them
    assert not path.exists()


def test_max_skipped_takes_a_fraction_or_a_percentage(stubs):
    from bindcore.recipe import ModalityData

    assert ModalityData(max_skipped="2.5%").max_skipped == pytest.approx(0.025)
    assert ModalityData(max_skipped=0.2).max_skipped == 0.2
    for bad in ("lots%", 3):
        with pytest.raises(ValueError):
            ModalityData(max_skipped=bad)


def _ddp_skip_worker(rank: int, world: int, port: int, recipe: str, out: str) -> None:
    import os

    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    set_registry(stub_registry("toya"))
    try:
        train(load_recipe(recipe, overrides=["run.dist_timeout_s=60"]), out, log=_quiet)
    except ConfigError as error:  # recorded, not raised: spawn would end the other rank at once, hiding a hang
        (Path(out) / f"error-{rank}.txt").write_text(str(error))
    finally:
        dist.destroy_process_group()


def test_gloo_ranks_share_their_skips_and_stop_together(stubs, tmp_path):
    import socket

    import torch.multiprocessing as mp

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    recipe = _manifest_recipe(tmp_path, bad={5: "empty", 20: "empty"}, on_error="skip", max_skipped="10%")
    train(load_recipe(recipe), tmp_path / "single", log=_quiet)
    mp.spawn(_ddp_skip_worker, args=(2, free_port(), str(recipe), str(tmp_path / "ddp")), nprocs=2, join=True)
    def listed(run: str) -> list[str]:
        return sorted(json.loads(line)["where"] for line in (tmp_path / run / "skipped.jsonl").read_text().splitlines())

    assert listed("ddp") == listed("single") and len(listed("ddp")) == 2  # each rank's skips, written once
    strict = load_recipe(recipe, overrides=["modalities.toya.data.max_skipped=0.01"]).raw
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(strict))
    mp.spawn(_ddp_skip_worker, args=(2, free_port(), str(tmp_path / "strict.yaml"), str(tmp_path / "ddp2")),
             nprocs=2, join=True)
    for rank in range(2):  # both ranks stop at the same step with the same error; neither waits for the other
        assert "max_skipped 0.01 allows" in (tmp_path / "ddp2" / f"error-{rank}.txt").read_text()


# -- --check reads the data ---------------------------------------------------------------------------------
def test_check_reads_every_row_and_lists_bad_lines_and_missing_files(stubs, tmp_path):
    from bindcore.cli import cli

    recipe = _manifest_recipe(tmp_path, rows=40)
    manifest = tmp_path / "data" / "pairs.jsonl"
    ok = CliRunner().invoke(cli, ["train", str(recipe), "--check"])
    assert ok.exit_code == 0, ok.output
    assert "modalities.toya.data: 40 rows of" in ok.output and "checked (80 files)" in ok.output
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2][:-1]  # line 3: cut JSON
    for row in range(10, 35):  # lines 10-34: 25 missing files
        (tmp_path / "data" / f"{row}.toya.npy").unlink()
    manifest.write_text("\n".join(lines) + "\n")
    bad = CliRunner().invoke(cli, ["train", str(recipe), "--check"])
    assert bad.exit_code != 0
    assert f"{manifest}:3: not valid JSON" in bad.output
    assert f"{manifest}:10: toya file not found" in bad.output
    assert "... and 6 more" in bad.output  # 26 problems, 20 listed
    assert "valid (" not in bad.output


# -- batch size against the dataset ----------------------------------------------------------------------
def test_batch_size_above_the_dataset_is_refused_with_both_numbers(stubs, tmp_path):
    recipe = _manifest_recipe(tmp_path, rows=10)
    with pytest.raises(ConfigError, match=r"toya\.train\.batch_size 16 is larger than the 10 items of the manifest"):
        load_recipe(recipe)
    raw = tiny_recipe("toya")
    raw["modalities"]["toya"]["train"]["batch_size"] = 100
    with pytest.raises(ConfigError, match=r"batch_size 100 is larger than the 64 items of the toy world"):
        validate_recipe(raw)
    with pytest.raises(ConfigError, match=r"batch_size 100 is larger than the 64 items of its toy data"):
        train(validate_recipe(raw, check_files=False), tmp_path / "run", log=_quiet)
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- WebDataset shards ------------------------------------------------------------------------------------
def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _shards(folder: Path, count: int = 2, per_shard: int = 20, bad: str | None = None) -> str:
    rng = np.random.default_rng(1)
    folder.mkdir(exist_ok=True)
    for shard in range(count):
        members = {}
        for item in range(per_shard):
            image, features = _arrays(rng)
            key = f"part.v1/{shard:02d}{item:04d}"  # a dot in the directory name
            members[f"{key}.image.npy"] = _npy(image)
            members[f"{key}.toya.npy"] = b"" if f"{shard:02d}{item:04d}" == bad else _npy(features)
        _tar(folder / f"train-{shard:03d}.tar", members)
    return f"shards/train-{{000..{count - 1:03d}}}.tar"


def test_webdataset_recipe_validates_and_trains(stubs, tmp_path, monkeypatch):
    import tempfile

    # Record the extraction folders the sources make. (Not by pointing tempfile.tempdir elsewhere: multiprocessing
    # caches its own temporary folder from it, and a later DataLoader in this process then hangs once pytest has
    # removed this test's tmp_path.)
    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        path = real_mkdtemp(*args, **kwargs)
        if str(kwargs.get("prefix", "")).startswith("bindcore-shards-"):
            made.append(path)
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    pattern = _shards(tmp_path / "shards")
    raw = tiny_recipe("toya")
    raw["data"]["workers"] = 1
    raw["modalities"]["toya"]["data"] = {"kind": "webdataset", "shards": pattern}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    checked: list[str] = []
    recipe = load_recipe(path, checked=checked)
    assert checked == ["modalities.toya.data: 40 samples in 2 shard(s) indexed"]
    result = train(recipe, tmp_path / "run", log=_quiet)
    assert result.steps > 0 and np.isfinite(result.final_losses["toya"])
    assert (tmp_path / "run" / "modalities" / "toya" / "model.safetensors").is_file()
    gc.collect()  # the trainer and its sources are gone: so are the extracted members (no copy of the data left)
    assert made and not [path for path in made if Path(path).exists()]


def test_a_bad_shard_member_is_named_by_shard_and_sample(stubs, tmp_path):
    pattern = _shards(tmp_path / "shards", bad="010007")
    raw = tiny_recipe("toya")
    raw["modalities"]["toya"]["data"] = {"kind": "webdataset", "shards": pattern}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=r"train-001\.tar sample 'part\.v1/010007'"):
        train(load_recipe(path), tmp_path / "run", log=_quiet)


def test_shard_keys_split_at_the_first_dot_of_the_file_name(tmp_path):
    from bindcore.data.sources import ShardSource

    shard = _tar(tmp_path / "s.tar", {"dir.v1/000001.image.png": b"img", "dir.v1/000001.audio.wav": b"wav",
                                      "./000002.image.png": b"img2", "./000002.audio.flac": b"wav2"})
    source = ShardSource(str(shard), "audio")
    assert len(source) == 2
    assert source.describe(0) == f"{shard} sample 'dir.v1/000001'"
    item = source.load(0)
    assert open(item["audio"], "rb").read() == b"wav" and item["audio"].endswith(".audio.wav")
    assert open(source.load(1)["audio"], "rb").read() == b"wav2"


@pytest.mark.parametrize("name, reason", [
    ("../../escape.image.png", "a '..' component"),
    ("/etc/abs.image.png", "an absolute path"),
    ("a/..\\b.image.png", "the character '\\\\'"),
    ("noextension", "is not named '<key>.<ext>'"),
])
def test_crafted_member_names_are_refused_naming_shard_and_member(tmp_path, name, reason):
    from bindcore.data.sources import ShardSource

    shard = _tar(tmp_path / "s.tar", {"000001.image.png": b"img", "000001.audio.wav": b"wav", name: b"x"})
    with pytest.raises(ConfigError) as info:
        ShardSource(str(shard), "audio")
    assert str(info.value).startswith(f"{shard}: member {name!r}") and reason in str(info.value)
    assert not (tmp_path.parent / "escape.image.png").exists()



def test_a_member_extension_too_long_for_a_file_name_is_refused_naming_shard_and_member(tmp_path, monkeypatch):
    import errno

    from bindcore.data.sources import MAX_EXTENSION_BYTES, ShardSource

    long_name = "000001.audio." + "x" * 260 + ".wav"  # extracted as "0.audio.xxx…": over 255 bytes
    shard = _tar(tmp_path / "s.tar", {"000001.image.png": b"img", long_name: b"wav"})
    with pytest.raises(ConfigError) as info:
        ShardSource(str(shard), "audio")
    assert str(info.value).startswith(f"{shard}: member {long_name!r} has an extension of 270 bytes")
    # a file system with shorter file names than the index allows for: named at extraction
    fitting = "000001.audio." + "x" * (MAX_EXTENSION_BYTES - 10) + ".wav"
    shard = _tar(tmp_path / "t.tar", {"000001.image.png": b"img", fitting: b"wav"})
    source = ShardSource(str(shard), "audio")
    real_write_bytes = Path.write_bytes

    def short_names(path, data):
        if len(path.name) > 143:  # e.g. eCryptfs
            raise OSError(errno.ENAMETOOLONG, "File name too long", str(path))
        return real_write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", short_names)
    with pytest.raises(ConfigError) as info:
        source.load(0)
    assert str(info.value).startswith(f"{shard}: member {fitting!r} cannot be extracted")


def test_extracted_members_are_removed(tmp_path):
    from bindcore.data.sources import ShardSource

    shard = _tar(tmp_path / "s.tar", {"000001.image.png": b"img", "000001.audio.wav": b"wav"})
    source = ShardSource(str(shard), "audio")
    item = source.load(0)
    folder = Path(item["audio"]).parent.parent
    source.release(item)
    assert not Path(item["audio"]).exists() and not Path(item["image"]).exists()
    source.load(0)
    del source, item
    gc.collect()
    assert not folder.exists()  # garbage-collected source: its folder is gone
    script = ("import sys; from bindcore.data.sources import ShardSource; "
              "s = ShardSource(sys.argv[1], 'audio'); print(s.load(0)['audio'])")
    extracted = subprocess.run([sys.executable, "-c", script, str(shard)], capture_output=True, text=True,
                               check=True).stdout.strip()
    assert extracted and not Path(extracted).parent.parent.exists()  # and at process exit


# -- the process group's timeout ---------------------------------------------------------------------------
def test_dist_timeout_reaches_init_process_group(stubs, monkeypatch):
    import torch.distributed as dist

    from bindcore.run_setup import make_context

    calls = []
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kwargs: calls.append((backend, kwargs)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    raw = tiny_recipe("toya", dist_timeout_s=42, device="cpu")
    make_context(validate_recipe(raw))
    assert calls == [("gloo", {"timeout": datetime.timedelta(seconds=42)})]
    assert validate_recipe(tiny_recipe("toya")).run.dist_timeout_s == 1800  # the default: half an hour
