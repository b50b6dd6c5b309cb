"""Writing any source of (image, modality) pairs into WebDataset shards plus their index (``bindcore shard``).

Items go into shards in source order (item ``n`` is sample ``n`` of the shards, so indexed shards give the same
batches as the source), a new shard starting once one reaches ``shard_size`` bytes. Each finished shard is written
atomically and recorded in the index (``index.json``, marked incomplete until the last shard), so an interrupted
run resumes after its last recorded shard and never rewrites one.

``preprocessed=True`` stores the modality's preprocessed tensor of each item (``<key>.<modality>.preprocessed.npy``)
instead of its raw file, so training spends no CPU decoding it; augmentation acts on preprocessed tensors, so it
still applies. The index then holds the plugin config that made them, and training refuses shards made by another
config (:func:`check_preprocessing`), naming the keys that differ. The image stays raw (the anchor cache,
``anchor.cache_embeddings``, removes its decoding from training instead).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from bindcore.data.shard_index import INDEX_FILE, ShardIndex
from bindcore.data.sources import IMAGE_KEY, PairedSource
from bindcore.errors import ConfigError, InputError
from bindcore.io import atomic_file

#: The member extension of a preprocessed tensor (after the modality's name).
PREPROCESSED_EXT = "preprocessed.npy"
UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "KIB": 2**10, "MIB": 2**20,
         "GIB": 2**30}


def parse_size(text: str) -> int:
    """``"1GB"`` → 10⁹ bytes (KB/MB/GB/TB decimal, KiB/MiB/GiB binary, a bare number is bytes)."""
    value = text.strip().upper().replace(" ", "")
    number = value.rstrip("KMGTIB")
    unit = value[len(number):]
    try:
        size = float(number) * UNITS[unit]
    except (ValueError, KeyError):
        raise ConfigError(f"shard size {text!r}: write a number of bytes with a unit, e.g. 500MB or 1GB") from None
    if size < 1:
        raise ConfigError(f"shard size {text!r} must be positive")
    return int(size)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def encode_raw(value: Any, what: str) -> tuple[str, bytes]:
    """(extension, bytes) of one raw input: a file's bytes under its own extension (``wav``, ``jpg``), an array as
    ``npy``, a PIL image as ``png``, a string that names no file as ``txt``."""
    if isinstance(value, (str, Path)) and Path(value).is_file():
        suffix = "".join(Path(value).suffixes[-1:]).lstrip(".").lower() or "bin"
        return suffix, Path(value).read_bytes()
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):  # (samples, sample rate)
        import soundfile

        buffer = io.BytesIO()
        samples = np.asarray(value[0], dtype=np.float32)
        soundfile.write(buffer, samples.T if samples.ndim == 2 else samples, value[1], format="WAV",
                        subtype="FLOAT")  # 32-bit float: the samples come back exactly
        return "wav", buffer.getvalue()
    if isinstance(value, Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3 and value.shape[2] in (1, 3):
        from PIL import Image  # an RGB (or grey) frame: PNG is lossless and every image plugin reads it

        buffer = io.BytesIO()
        Image.fromarray(value[..., 0] if value.shape[2] == 1 else value).save(buffer, format="PNG")
        return "png", buffer.getvalue()
    if isinstance(value, np.ndarray):
        return "npy", _npy(value)
    if hasattr(value, "save") and hasattr(value, "mode"):  # a PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return "png", buffer.getvalue()
    if isinstance(value, str):
        return "txt", value.encode()
    raise InputError(value, f"{what}: a {type(value).__name__} cannot be stored in a shard",
                     fix="give the source file paths, arrays, PIL images or strings")


def preprocessing_of(module: Any) -> dict[str, Any]:
    """What a modality's preprocessing depends on: its name and config (``preprocess_fields``, when the plugin
    declares it, narrows the config to the fields preprocessing reads)."""
    config = module.config.model_dump(mode="json") if getattr(module, "config", None) is not None else {}
    fields = getattr(module, "preprocess_fields", None)
    if fields is not None:
        config = {key: value for key, value in config.items() if key in fields}
    return {"modality": getattr(module, "name", None), "config": config}


def _differing(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, Mapping) and isinstance(right, Mapping):
            keys.extend(_differing(left, right, f"{prefix}{key}."))
        elif left != right:
            keys.append(f"{prefix}{key} ({json.dumps(left)} in the shards, {json.dumps(right)} now)")
    return keys


def check_preprocessing(index: ShardIndex, module: Any, where: str) -> None:
    """Refuse preprocessed shards made by another plugin config than ``module``'s, naming the differing keys."""
    if not index.preprocessed:
        return
    made = index.fingerprint.get("preprocessing") or {}
    differing = _differing(made, preprocessing_of(module))
    if differing:
        raise ConfigError(f"{where}: the shards in {index.path} hold tensors preprocessed with another config of "
                          f"{made.get('modality') or 'the modality'}; differing: {'; '.join(differing)}. Set these "
                          f"back, or re-shard: bindcore shard RECIPE --modality NAME --preprocessed --out DIR")


class PreprocessedInputs:
    """Stands in for a modality's preprocessing when its shards hold preprocessed tensors: loads and stacks them.
    Axis names for augmentation are the modality's."""

    def __init__(self, module: Any):
        self.augment_axes = dict(getattr(module, "augment_axes", {}) or {})
        self.name = getattr(module, "name", None)

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = []
        for item in inputs:
            try:
                rows.append(torch.from_numpy(np.load(item, allow_pickle=False)))
            except (OSError, ValueError) as error:
                raise InputError(item, f"not a preprocessed tensor ({type(error).__name__}: {error})",
                                 fix="re-shard with bindcore shard --preprocessed") from None
        return torch.stack(rows)


def input_preprocessor(source: PairedSource, module: Any) -> Any:
    """What turns ``source``'s items into the modality's tensors: the module, or a loader of stored tensors."""
    return PreprocessedInputs(module) if getattr(source, "preprocessed", False) else module


class _Encoded(Dataset):
    """Item ``n`` = (key, {extension: bytes}) of source item ``n`` (preprocessed in the worker when asked)."""

    def __init__(self, source: PairedSource, modality: str, module: Any, preprocessed: bool, start: int):
        self.source, self.modality, self.module = source, modality, module
        self.preprocessed, self.start = preprocessed, start

    def __len__(self) -> int:
        return len(self.source) - self.start

    def __getitem__(self, number: int) -> tuple[int, dict[str, bytes]]:
        index = self.start + number
        item = self.source.load(index)
        try:
            members: dict[str, bytes] = {}
            ext, data = encode_raw(item[IMAGE_KEY], self.source.describe(index))
            members[f"{IMAGE_KEY}.{ext}"] = data
            if self.preprocessed:
                try:
                    tensor = self.module.preprocess([item[self.modality]])[0]
                except Exception as error:
                    raise ConfigError(f"{self.source.describe(index)}: the {self.modality} input cannot be "
                                      f"preprocessed ({type(error).__name__}: {error}); fix or remove it") from None
                members[f"{self.modality}.{PREPROCESSED_EXT}"] = _npy(tensor.contiguous().numpy())
            else:
                ext, data = encode_raw(item[self.modality], self.source.describe(index))
                members[f"{self.modality}.{ext}"] = data
            return index, members
        finally:
            self.source.release(item)


def _write_tar(path: Path, samples: list[tuple[int, dict[str, bytes]]]) -> None:
    with atomic_file(path, "wb") as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for index, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{index:09d}.{ext}")
                info.size, info.mode, info.mtime = len(data), 0o644, 0  # reproducible bytes
                tar.addfile(info, io.BytesIO(data))


def write_shards(source: PairedSource, modality: str, module: Any, out: str | Path, *, preprocessed: bool = False,
                 shard_size: int = 10**9, workers: int = 0, progress: bool = True,
                 log: Callable[[str], None] = print) -> ShardIndex:
    """Write every item of ``source`` into ``out/<modality>-NNNNNN.tar`` plus ``out/index.json``; resumes an
    interrupted run of the same settings (its recorded shards are kept)."""
    from tqdm import tqdm

    out = Path(out)
    fingerprint = {"source": {key: source.fingerprint(key) for key in (IMAGE_KEY, modality)},
                   "shard_size": shard_size, "items": len(source),
                   "preprocessing": preprocessing_of(module) if preprocessed else None}
    index_file = out / INDEX_FILE
    done: dict[str, int] = {}
    if index_file.is_file():
        previous = json.loads(index_file.read_text())
        if previous.get("fingerprint") != fingerprint:
            raise ConfigError(f"{out} holds shards of another source or other settings ({index_file}); "
                              f"use another --out or remove them")
        if previous.get("complete"):
            log(f"{out}: all {previous.get('total')} items are already sharded")
            return ShardIndex.load(index_file)
        for shard in previous.get("shards", []):
            if not (out / shard["name"]).is_file():
                break
            done[shard["name"]] = int(shard["items"])
    start = sum(done.values())
    if done:
        log(f"{out}: resuming after {len(done)} finished shard(s) ({start} items)")
    index = ShardIndex(dict(done), modality, preprocessed, fingerprint)

    def record(complete: bool) -> None:
        payload = {**index.to_json(), "complete": complete}
        with atomic_file(index_file, "w") as handle:
            handle.write(json.dumps(payload, indent=1) + "\n")

    loader = DataLoader(_Encoded(source, modality, module, preprocessed, start), batch_size=None,
                        num_workers=workers, generator=torch.Generator())
    bar = tqdm(total=len(source), initial=start, desc=f"shard {modality}", unit="item", disable=not progress)
    pending: list[tuple[int, dict[str, bytes]]] = []
    pending_bytes = 0

    def flush() -> None:
        nonlocal pending, pending_bytes
        name = f"{modality}-{len(index.items):06d}.tar"
        _write_tar(out / name, pending)
        index.items[name] = len(pending)
        record(complete=False)
        pending, pending_bytes = [], 0

    for sample in loader:
        pending.append(sample)
        pending_bytes += sum(len(data) + 1024 for data in sample[1].values())  # + tar headers and padding
        bar.update(1)
        if pending_bytes >= shard_size:
            flush()
    if pending:
        flush()
    bar.close()
    record(complete=True)
    index.path = index_file
    log(f"{out}: {index.total} items in {len(index.items)} shard(s); index {index_file}")
    return index
