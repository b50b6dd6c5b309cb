"""Streamed WebDataset shards (``data: {kind: webdataset, mode: stream}``): for data too large to sit on local disk
or to index up front.

Every sample has an ordinal (its shard's offset in the shard index plus its position in the shard), so the step
plan stays a pure function of (seed, step) and a resumed run replays exactly the batches of an uninterrupted one.
:class:`StreamPlan` orders an epoch so that it can be read sequentially:

* the shards are permuted from the run's seed and the epoch, concatenated, and cut into ``world_size × lanes``
  equal segments (``lanes``: one per DataLoader worker, at least one): rank ``r`` reads only segments
  ``r·lanes … r·lanes + lanes - 1``, its worker ``w`` only one of them, so no sample is read by two of them;
* each segment is shuffled within consecutive windows of ``shuffle_buffer`` samples (a seeded shuffle buffer);
* the modality's step ``k`` takes each rank's share of the batch from lane ``k mod lanes``. The DataLoader hands
  steps to its workers in turn, so each worker keeps reading one segment front to back.

:class:`StreamSource` serves those ordinals from shards it opens sequentially (:func:`open_shard`) and keeps the
samples it read ahead in a bounded buffer; an ordinal it has passed (a resume, a skipped item's substitute) reopens
the shard and reads forward to it, so any access order gives the same items, only slower. An epoch drops the few
samples left over by the equal cut (at most ``world_size × lanes × (batch + 1)``); none is read twice.
"""

from __future__ import annotations

import bisect
import functools
import os
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bindcore.data.plan import ModalityPlan
from bindcore.data.shard_index import INDEX_FILE, ShardIndex, is_url, open_shard, shard_name, tar_samples
from bindcore.data.sources import IMAGE_KEY, PairedSource, _remove_tree, extract_member, release_members
from bindcore.errors import ConfigError
from bindcore.seeds import seed_of

#: Default window of the seeded shuffle (samples): webdataset's usual shuffle buffer.
DEFAULT_SHUFFLE_BUFFER = 1000


@dataclass(frozen=True)
class StreamPlan(ModalityPlan):
    """Epoch arithmetic and sample order of a streamed modality (see the module docstring)."""

    shard_items: tuple[int, ...] = ()
    world_size: int = 1
    lanes: int = 1
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER

    @property
    def slots(self) -> int:
        return self.world_size * self.lanes

    @property
    def rank_batch(self) -> int:
        return self.batch_size // self.world_size

    @property
    def segment_length(self) -> int:
        return self.num_items // self.slots

    @property
    def steps_per_segment(self) -> int:
        return self.segment_length // self.rank_batch

    @property
    def samples_per_epoch(self) -> int:
        return self.steps_per_epoch * self.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.steps_per_segment * self.lanes)

    def reading_layout(self) -> dict[str, int]:
        """The readers the epoch is cut for: the order changes with the number of processes or lanes."""
        return {"processes": self.world_size, "lanes": self.lanes}

    def problem(self) -> str | None:
        """Why this stream cannot fill one batch per lane and rank, or None."""
        if self.steps_per_segment >= 1:
            return None
        return (f"modalities.{self.name}.data: {self.num_items} streamed samples cut into {self.slots} segments "
                f"({self.world_size} process(es) × {self.lanes} lane(s), one per DataLoader worker) leave "
                f"{self.segment_length} per segment, fewer than one batch share of {self.rank_batch}; lower "
                f"train.batch_size or data.workers, or use mode: index for small data")

    def indices(self, seed: int, local_step: int) -> np.ndarray:
        """Ordinals of the modality's ``local_step``-th global batch: rank ``r``'s share is ``[r·b, (r+1)·b)``."""
        epoch, position = divmod(local_step, self.steps_per_epoch)
        lane, row = position % self.lanes, position // self.lanes
        b = self.rank_batch
        parts = [_segment_order(self, seed, epoch, rank * self.lanes + lane)[row * b:(row + 1) * b]
                 for rank in range(self.world_size)]
        return np.concatenate(parts)


@functools.lru_cache(maxsize=64)
def _segment_order(plan: StreamPlan, seed: int, epoch: int, slot: int) -> np.ndarray:
    """The ordinals of segment ``slot`` of ``epoch`` in reading order, shuffled within windows."""
    counts = np.asarray(plan.shard_items, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    shards = np.random.default_rng(seed_of("shard-order", seed, plan.name, epoch)).permutation(len(counts))
    start, stop = slot * plan.segment_length, (slot + 1) * plan.segment_length
    ends = np.cumsum(counts[shards])  # the permuted stream's shard boundaries
    first = int(np.searchsorted(ends, start, side="right"))
    pieces, position = [], int(ends[first - 1]) if first else 0
    for shard in shards[first:]:
        if position >= stop:
            break
        lo, hi = max(start, position), min(stop, position + int(counts[shard]))
        pieces.append(np.arange(lo - position, hi - position) + offsets[shard])
        position += int(counts[shard])
    order = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int64)
    window = max(1, plan.shuffle_buffer)
    for number, begin in enumerate(range(0, len(order), window)):
        rng = np.random.default_rng(seed_of("shuffle-window", seed, plan.name, epoch, slot, number))
        order[begin:begin + window] = order[begin:begin + window][rng.permutation(len(order[begin:begin + window]))]
    return order


class _Reader:
    """One shard opened for sequential reading; ``position``: the next sample it yields."""

    def __init__(self, url: str):
        self.url = url
        self.stream = open_shard(url)
        self.samples: Iterator[tuple[str, dict[str, bytes]]] = tar_samples(url, self.stream)
        self.position = 0

    def close(self) -> None:
        try:
            self.stream.close()
        except Exception:  # a pipe whose command already ended: nothing left to release
            pass


class StreamSource(PairedSource):
    """Samples of WebDataset shards read sequentially, addressed by ordinal (see the module docstring).

    Members are matched to keys as in :class:`~bindcore.data.sources.ShardSource` (``<key>.<ext>``: ``audio.wav``
    serves ``audio``). ``load`` writes a member to a temporary file (plugins take file paths) that ``release``
    deletes; ``opened`` counts the shards this process opened (sequential reading opens each once per epoch).
    """

    def __init__(self, urls: Sequence[str], index: ShardIndex, modality: str, *, where: str = "shards",
                 read_ahead: int = 2 * DEFAULT_SHUFFLE_BUFFER, open_readers: int = 4):
        self.urls = list(urls)
        self.index = index
        self.modality = modality
        self.keys = (IMAGE_KEY, modality)
        self.counts = index.counts(self.urls, where)
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64).tolist()
        self.read_ahead = max(1, read_ahead)
        self.open_readers = max(1, open_readers)
        self.opened = 0
        self._readers: OrderedDict[int, _Reader] = OrderedDict()
        self._buffer: OrderedDict[int, tuple[str, dict[str, bytes]]] = OrderedDict()
        self._pid = os.getpid()
        self._tmp = tempfile.mkdtemp(prefix="bindcore-stream-")
        self._finalizer = weakref.finalize(self, _remove_tree, self._tmp, os.getpid())

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_finalizer"] = None  # a worker's copy uses the folder; its creator removes it
        state["_readers"], state["_buffer"], state["opened"] = OrderedDict(), OrderedDict(), 0
        return state

    def locate(self, ordinal: int) -> tuple[int, int]:
        """(shard number, position in the shard) of ``ordinal``."""
        if not 0 <= ordinal < len(self):
            raise IndexError(f"ordinal {ordinal} outside the {len(self)} samples of the stream")
        shard = bisect.bisect_right(self.offsets, ordinal) - 1
        return shard, ordinal - self.offsets[shard]

    def _keep(self, ordinal: int, sample: tuple[str, dict[str, bytes]]) -> None:
        self._buffer[ordinal] = sample
        while len(self._buffer) > self.read_ahead:
            self._buffer.popitem(last=False)  # the oldest read: an ordinal asked for again reopens its shard

    def _reader(self, shard: int, position: int) -> _Reader:
        reader = self._readers.get(shard)
        if reader is None or reader.position > position:
            if reader is not None:
                reader.close()
            reader = _Reader(self.urls[shard])
            self.opened += 1
            self._readers[shard] = reader
        self._readers.move_to_end(shard)
        while len(self._readers) > self.open_readers:
            self._readers.popitem(last=False)[1].close()
        return reader

    def sample(self, ordinal: int) -> tuple[str, dict[str, bytes]]:
        """(sample key, {extension: bytes}) of ``ordinal``, reading its shard forward as far as needed."""
        if self._pid != os.getpid():  # a forked worker: its parent's open streams are not its own (never close them)
            self._readers, self._buffer, self.opened, self._pid = OrderedDict(), OrderedDict(), 0, os.getpid()
        if ordinal in self._buffer:
            return self._buffer[ordinal]
        shard, position = self.locate(ordinal)
        reader = self._reader(shard, position)
        wanted = None
        while reader.position <= position:
            try:
                found = next(reader.samples)
            except StopIteration:
                raise ConfigError(f"{reader.url}: ended after {reader.position} samples, but the shard index "
                                  f"{self.index.path} lists {self.counts[shard]}; the shards changed since it was "
                                  f"written: rebuild it (bindcore shard RECIPE --modality {self.modality} "
                                  f"--index-only)") from None
            key, members = found
            kept = {ext: data for ext, data in members.items() if self._wanted_key(ext) is not None}
            wanted = (key, kept)
            self._keep(self.offsets[shard] + reader.position, wanted)
            reader.position += 1
        assert wanted is not None
        return wanted

    def _wanted_key(self, ext: str) -> str | None:
        for key in self.keys:
            if ext == key or ext.startswith(key + "."):
                return key
        return None

    def member(self, ordinal: int, key: str) -> tuple[str, bytes]:
        """(extension, bytes) of the ``key`` member of sample ``ordinal``."""
        sample_key, members = self.sample(ordinal)
        for ext, data in members.items():
            if self._wanted_key(ext) == key:
                return ext, data
        shard, _ = self.locate(ordinal)
        raise ConfigError(f"{self.urls[shard]}: sample {sample_key!r} has no {key!r} member (every sample needs "
                          f"{' and '.join(repr(k) for k in self.keys)}, e.g. {sample_key}.{key}.npy)")

    def load(self, index: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        folder = Path(self._tmp) / str(os.getpid())
        folder.mkdir(exist_ok=True)
        item: dict[str, Any] = {"label": None}
        for key in keys or self.keys:
            ext, data = self.member(index, key)
            item[key] = extract_member(folder / f"{index}.{ext}", data, f"{self.describe(index)}: member .{ext}")
        return item

    def release(self, item: dict[str, Any]) -> None:
        release_members(item, self.keys)

    def describe(self, index: int) -> str:
        shard, position = self.locate(index)
        found = self._buffer.get(index)
        return f"{self.urls[shard]} sample {found[0]!r}" if found else f"{self.urls[shard]} sample #{position}"

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        import json

        return "stream:" + json.dumps([key, [shard_name(u) for u in self.urls], self.counts,
                                       self.index.fingerprint], sort_keys=True)


def shard_urls(pattern: str, recipe_file: Path | None) -> list[str]:
    """The shards of a pattern: brace-expanded, environment variables expanded, local paths relative to the recipe
    file; ``pipe:`` commands and URLs as written."""
    from bindcore.data.sources import expand_shards
    from bindcore.recipe.schema import resolve_path

    expanded = os.path.expandvars(pattern)
    if is_url(expanded):
        return expand_shards(expanded)
    return expand_shards(str(resolve_path(recipe_file, pattern)))


def index_path(data: Any, recipe_file: Path | None) -> Path:
    """Where the shard index of a ``webdataset`` data block is: ``data.index``, else ``index.json`` beside the
    (local) shards."""
    from bindcore.recipe.schema import resolve_path

    if data.index:
        return resolve_path(recipe_file, data.index)
    pattern = os.path.expandvars(data.shards or "")
    if is_url(pattern):
        raise ConfigError(f"data.shards {data.shards!r} is streamed from a command or URL: name its shard index "
                          f"with data.index (a local file; bindcore shard RECIPE --modality NAME --index-only "
                          f"writes one)")
    return shard_urls_folder(pattern, recipe_file) / INDEX_FILE


def shard_urls_folder(pattern: str, recipe_file: Path | None) -> Path:
    from bindcore.recipe.schema import resolve_path

    return resolve_path(recipe_file, pattern).parent


def open_stream(name: str, block: Any, recipe_file: Path | None) -> StreamSource:
    """The :class:`StreamSource` of ``modalities.<name>`` (``kind: webdataset, mode: stream``)."""
    data = block.data
    where = f"modalities.{name}.data"
    path = index_path(data, recipe_file)
    fix = (f"Write it with: bindcore shard RECIPE --modality {name} --index-only (streams the shards once and "
           f"counts their samples), or set {where}.index")
    index = ShardIndex.load(path, fix=fix)
    read_ahead = 2 * data.shuffle_buffer + block.train.batch_size
    return StreamSource(shard_urls(data.shards or "", recipe_file), index, name, where=where,
                        read_ahead=read_ahead)


def open_webdataset(name: str, block: Any, recipe_file: Path | None, module: Any = None) -> PairedSource:
    """The source of a ``kind: webdataset`` modality: streamed (``mode: stream``) or indexed up front. Shards
    whose index says they hold preprocessed tensors are checked against ``module``'s config and marked
    ``preprocessed`` (training then loads the tensors instead of preprocessing)."""
    from bindcore.data.shard import check_preprocessing
    from bindcore.data.sources import ShardSource
    from bindcore.recipe.schema import resolve_path

    where = f"modalities.{name}.data"
    source: PairedSource
    if block.data.mode == "stream":
        source = open_stream(name, block, recipe_file)
        index: ShardIndex | None = source.index
    else:
        source = ShardSource(str(resolve_path(recipe_file, block.data.shards or "")), name)
        path = index_path(block.data, recipe_file)
        index = ShardIndex.load(path) if path.is_file() else None
    if index is not None and index.preprocessed:
        if module is not None:
            check_preprocessing(index, module, where)
        source.preprocessed = True
    return source


def check_stream(name: str, block: Any, recipe_file: Path | None, problems: list[str]) -> tuple[int | None, str | None]:
    """``bindcore train --check`` of a streamed modality: its shard index lists every shard of the pattern and
    every local shard exists (the shards themselves are not read). Returns (sample count, summary line)."""
    prefix = f"modalities.{name}.data"
    try:
        source = open_stream(name, block, recipe_file)
    except ConfigError as error:
        problems.append(f"{prefix}: {error}")
        return None, None
    missing = [url for url in source.urls if not is_url(url) and not Path(url).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        problems.append(f"{prefix}.shards: shard not found: {missing[0]}{more}")
        return None, None
    return len(source), (f"{prefix}: {len(source)} samples in {len(source.urls)} streamed shard(s), counted by "
                         f"{source.index.path}")


def modality_plan(name: str, source: PairedSource, block: Any, *, world_size: int, workers: int) -> ModalityPlan:
    """The step plan of one modality: a :class:`StreamPlan` for a streamed source (raises :class:`ConfigError` when
    a segment cannot hold one batch share), else the random-access :class:`ModalityPlan`."""
    settings = block.train
    if not isinstance(source, StreamSource):
        return ModalityPlan(name, len(source), settings.batch_size, settings.replication, settings.epochs,
                            settings.max_steps)
    if settings.replication != 1:
        raise ConfigError(f"modalities.{name}.train.replication {settings.replication:g}: a streamed modality "
                          f"reads each sample once per epoch; set train.epochs instead")
    plan = StreamPlan(name, len(source), settings.batch_size, 1.0, settings.epochs, settings.max_steps,
                      shard_items=tuple(source.counts), world_size=world_size, lanes=max(1, workers),
                      shuffle_buffer=block.data.shuffle_buffer)
    problem = plan.problem()
    if problem:
        raise ConfigError(problem)
    return plan
