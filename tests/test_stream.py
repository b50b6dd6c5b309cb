"""Streamed WebDataset shards (``kind: webdataset, mode: stream``): the epoch order (each sample once, split across
ranks and workers), sequential reading from paths, ``pipe:`` commands and fsspec URLs, the shard index, and a
SIGKILLed run that resumes bit-identically with 2 DataLoader workers and with 2 gloo ranks."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from bindcore.data.shard_index import INDEX_FILE, ShardIndex, scan_shards, shard_name
from bindcore.data.sources import ShardSource
from bindcore.data.stream import StreamPlan, StreamSource
from bindcore.errors import ConfigError
from bindcore.testing.stubs import tiny_recipe
from bindcore.train.checkpoint import list_checkpoints

PATTERN = "pairs-{000..005}.tar"


@pytest.fixture
def stubs():
    from bindcore.plugins import set_registry
    from bindcore.testing.stubs import stub_registry

    previous = set_registry(stub_registry("toya"))
    yield
    set_registry(previous)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_shards(folder: Path, shards: int = 6, per_shard: int = 16, *, index: bool = True) -> list[Path]:
    """``shards`` tars of ``per_shard`` (16×16 stub image, 16-float toya) pairs, plus their index.json."""
    import webdataset

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for shard in range(shards):
        path = folder / f"pairs-{shard:03d}.tar"
        with webdataset.TarWriter(str(path)) as sink:
            for item in range(per_shard):
                image = rng.uniform(0, 1, (3, 16, 16)).astype(np.float32)
                sink.write({"__key__": f"s{shard}_{item:03d}", "image.npy": _npy(image),
                            "toya.npy": _npy(rng.normal(0, 1, 16).astype(np.float32))})
        paths.append(path)
    if index:
        ShardIndex(scan_shards([str(p) for p in paths]), modality="toya").save(folder / INDEX_FILE)
    return paths


def test_an_epoch_reads_every_sample_once_split_across_ranks_and_lanes():
    plan = StreamPlan("toya", 96, 8, 1.0, 2.0, shard_items=(16,) * 6, world_size=2, lanes=2, shuffle_buffer=10)
    assert plan.steps_per_epoch == 12 and plan.samples_per_epoch == 96
    for epoch in range(2):
        batches = [plan.indices(0, epoch * plan.steps_per_epoch + k) for k in range(plan.steps_per_epoch)]
        seen = np.concatenate(batches)
        assert len(seen) == 96 and len(set(seen.tolist())) == 96  # each sample once per epoch
        # rank r reads only its own segments, each worker lane only one: no two readers share a sample
        readers: dict[tuple[int, int], set[int]] = {}
        for k, batch in enumerate(batches):
            for rank in range(2):
                readers.setdefault((rank, k % 2), set()).update(batch[rank * 4:(rank + 1) * 4].tolist())
        sets = list(readers.values())
        assert all(a.isdisjoint(b) for i, a in enumerate(sets) for b in sets[i + 1:])
        # a segment is consecutive shard data: each reader touches at most 3 of the 16-sample shards
        assert all(len({o // 16 for o in s}) <= 3 for s in sets)
    first = np.concatenate([plan.indices(0, k) for k in range(12)])
    second = np.concatenate([plan.indices(0, 12 + k) for k in range(12)])
    assert not np.array_equal(first, second)  # reshuffled by shard and within windows each epoch
    assert np.array_equal(first, np.concatenate([plan.indices(0, k) for k in range(12)]))  # a pure function
    assert not np.array_equal(first, np.concatenate([plan.indices(1, k) for k in range(12)]))  # seeded


def test_too_many_readers_for_the_data_is_an_error_naming_the_fix():
    plan = StreamPlan("toya", 32, 16, 1.0, 1.0, shard_items=(16, 16), world_size=2, lanes=4)
    assert "lower train.batch_size or data.workers" in plan.problem()


def _read(source, ordinals):
    out = []
    for ordinal in ordinals:
        item = source.load(int(ordinal))
        out.append((Path(item["image"]).read_bytes(), Path(item["toya"]).read_bytes()))
        source.release(item)
    return out


@pytest.mark.parametrize("how", ["path", "pipe", "fsspec"])
def test_streamed_samples_equal_the_indexed_ones_and_are_read_sequentially(tmp_path, how):
    paths = write_shards(tmp_path / "data")
    index = ShardIndex.load(tmp_path / "data" / INDEX_FILE)
    assert index.total == 96 and shard_name(f"pipe:curl -s https://host/x/{paths[0].name}") == paths[0].name
    if how == "path":
        urls = [str(p) for p in paths]
    elif how == "pipe":
        urls = [f"pipe:cat {p}" for p in paths]
    else:
        fsspec = pytest.importorskip("fsspec")
        memory = fsspec.filesystem("memory")
        for p in paths:
            memory.pipe(f"/stream-test/{p.name}", p.read_bytes())
        urls = [f"memory://stream-test/{p.name}" for p in paths]
    source = StreamSource(urls, index, "toya", read_ahead=40)
    indexed = ShardSource(str(tmp_path / "data" / PATTERN), "toya")
    plan = StreamPlan("toya", 96, 8, 1.0, 1.0, shard_items=tuple(source.counts), shuffle_buffer=10)
    ordinals = np.concatenate([plan.indices(0, k) for k in range(plan.steps_per_epoch)])
    assert _read(source, ordinals) == _read(indexed, ordinals)  # ordinal n is the n-th indexed sample
    assert source.opened == 6  # one epoch in plan order: each shard opened once
    _read(source, ordinals[:3])  # going back (a resume, a substitute) reopens and reads forward: slower, same
    assert source.opened > 6


def test_a_shard_shorter_than_its_index_says_names_the_fix(tmp_path):
    paths = write_shards(tmp_path / "data", shards=2)
    index = ShardIndex({p.name: 20 for p in paths}, modality="toya", path=tmp_path / "data" / INDEX_FILE)
    source = StreamSource([str(p) for p in paths], index, "toya")
    with pytest.raises(ConfigError, match=r"ended after 16 samples.*lists 20.*--index-only"):
        source.load(18)
    with pytest.raises(ConfigError, match=r"does not list .*pairs-009.tar; rebuild.*--index-only"):
        StreamSource([str(paths[0].with_name("pairs-009.tar"))], index, "toya")


def _stream_recipe(tmp_path: Path, **data) -> dict:
    raw = tiny_recipe("toya", steps_epochs=3, checkpoint_every=5)
    raw["modalities"]["toya"]["train"]["batch_size"] = 8
    raw["modalities"]["toya"]["train"]["augmentation"] = {"gaussian_noise": 0.05}
    raw["modalities"]["toya"]["data"] = {"kind": "webdataset", "mode": "stream", "shards": f"data/{PATTERN}",
                                         "shuffle_buffer": 10, **data}
    return raw


def test_a_missing_index_is_named_with_the_command_that_writes_it(stubs, tmp_path):
    from bindcore.recipe import load_recipe

    write_shards(tmp_path / "data", index=False)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(_stream_recipe(tmp_path)))
    with pytest.raises(ConfigError, match=r"shard index not found: .*index.json.*--modality toya --index-only"):
        load_recipe(tmp_path / "recipe.yaml")


SCRIPT = textwrap.dedent("""
    import os, sys
    import yaml

    def run(rank=0, world=1, port=0):
        if world > 1:
            os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                               "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
        from bindcore.plugins import set_registry
        from bindcore.testing.stubs import stub_registry
        set_registry(stub_registry("toya"))
        from bindcore.recipe import load_recipe
        from bindcore.train.trainer import train
        train(load_recipe(sys.argv[1]), sys.argv[2], log=lambda m: None)

    if __name__ == "__main__":
        world = int(sys.argv[3])
        if world == 1:
            run()
        else:
            import torch.multiprocessing as mp
            mp.spawn(run, args=(world, int(sys.argv[4])), nprocs=world, join=True)
""")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train(tmp_path: Path, out: Path, world: int, *, kill: bool) -> None:
    script = tmp_path / "stream_run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, str(script), str(tmp_path / "recipe.yaml"), str(out), str(world), str(_free_port())]
    process = subprocess.Popen(command, env=env, start_new_session=True)  # its own group: ranks and workers too
    if not kill:
        assert process.wait(timeout=600) == 0
        return
    deadline = time.monotonic() + 300
    while not list_checkpoints(out / "checkpoints") and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # every rank and DataLoader worker at once
    process.wait()


@pytest.mark.slow
@pytest.mark.parametrize(("world", "workers"), [(1, 2), (2, 0)], ids=["2-workers", "2-gloo-ranks"])
def test_sigkill_mid_epoch_then_resume_over_streamed_shards_is_bit_identical(tmp_path, world, workers):
    write_shards(tmp_path / "data")
    raw = _stream_recipe(tmp_path)
    raw["data"]["workers"] = workers
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(raw))
    # 96 samples / (2 readers) = 48 per segment, 8 per batch: 12 steps an epoch, 36 in all; checkpoints every 5
    # steps never fall on an epoch's end, so every resume starts mid-epoch.
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    _train(tmp_path, reference, world, kill=False)
    _train(tmp_path, resumed, world, kill=True)
    assert not (resumed / "modalities").exists()  # really killed mid-run
    killed_at = max(int(p.stem.split("-")[-1]) for p in list_checkpoints(resumed / "checkpoints"))
    assert killed_at % 12 and killed_at < 36
    _train(tmp_path, resumed, world, kill=False)
    a = load_file(str(reference / "modalities" / "toya" / "model.safetensors"))
    b = load_file(str(resumed / "modalities" / "toya" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"toya.{key} differs after resume"


class _Items(torch.utils.data.Dataset):
    def __init__(self, source, ordinals):
        self.source, self.ordinals = source, ordinals

    def __len__(self) -> int:
        return len(self.ordinals)

    def __getitem__(self, number: int):
        return _read(self.source, [self.ordinals[number]])[0]


def test_a_forked_worker_opens_its_own_streams_leaving_its_parents_intact(tmp_path):
    paths = write_shards(tmp_path / "data", shards=2, per_shard=40)
    source = StreamSource([str(p) for p in paths], ShardIndex.load(tmp_path / "data" / INDEX_FILE), "toya",
                          read_ahead=4)
    expected = _read(ShardSource(str(tmp_path / "data" / "pairs-{000..001}.tar"), "toya"), range(80))
    assert _read(source, range(5)) == expected[:5]  # the parent now holds an open stream, positioned at 5
    loader = torch.utils.data.DataLoader(_Items(source, list(range(5, 80))), batch_size=None, num_workers=1,
                                         multiprocessing_context="fork")
    assert [tuple(pair) for pair in loader] == expected[5:]  # (the loader turns tuples into lists)
    assert _read(source, range(5, 80)) == expected[5:]  # the parent's stream was not moved by the worker


class _Stop(Exception):
    pass


def test_resuming_with_other_readers_says_the_order_changes_and_how_to_replay(stubs, tmp_path):
    from bindcore.recipe import load_recipe
    from bindcore.train.trainer import train

    write_shards(tmp_path / "data")
    raw = _stream_recipe(tmp_path)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(raw))

    def stop_after_a_checkpoint(step: int, _batch: dict) -> None:
        if step == 7:
            raise _Stop

    out = tmp_path / "run"
    with pytest.raises(_Stop):
        train(load_recipe(tmp_path / "recipe.yaml"), out, log=lambda _m: None, step_hook=stop_after_a_checkpoint)
    same: list[str] = []
    with pytest.raises(_Stop):  # the same readers: nothing to say
        train(load_recipe(tmp_path / "recipe.yaml"), out, log=same.append, step_hook=stop_after_a_checkpoint)
    assert any(line.startswith("resuming from") for line in same) and not any("warning" in line for line in same)
    raw["data"]["workers"] = 2  # not part of the recipe's fingerprint: the resume goes ahead
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(raw))
    other: list[str] = []
    train(load_recipe(tmp_path / "recipe.yaml"), out, log=other.append)
    warning = next(line for line in other if line.startswith("warning: toya's streamed shards"))
    assert "1 process(es) × 1 lane(s) before this resume and now by 1 × 2" in warning
    assert "resume with 1 process(es) and data.workers: 0 or 1" in warning
