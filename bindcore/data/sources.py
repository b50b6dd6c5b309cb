"""Sources of (image, modality) pairs. Each item is a dict of raw inputs that plugins' ``preprocess`` accepts:
``{"image": ..., "<modality>": ..., "label": int | None}``. Loading is cheap and pure; preprocessing happens
in DataLoader workers (see :mod:`bindcore.data.batches`)."""

from __future__ import annotations

import csv
import json
import os
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bindcore.errors import ConfigError
from bindcore.toyworld import CONCEPTS, Scene, generate_scenes

IMAGE_KEY = "image"


class PairedSource:
    """Random-access pairs. ``keys`` are the raw-input keys an item holds (``image`` and one modality)."""

    keys: tuple[str, ...]

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        """Raw inputs of item ``index`` for ``keys`` (default: all) plus its ``label``."""
        raise NotImplementedError

    def label(self, index: int) -> int | None:
        return None

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        """Identifies the raw inputs under ``key`` (for cache staleness checks)."""
        raise NotImplementedError


class ToySource(PairedSource):
    """Toy-world scenes rendered on demand by each modality's ``render_toy`` (deterministic in ``seed``)."""

    def __init__(self, count: int, seed: int, renderers: dict[str, Any]):
        self.scenes: list[Scene] = generate_scenes(count, seed)
        self.seed = seed
        self.renderers = renderers
        self.keys = tuple(renderers)

    def __len__(self) -> int:
        return len(self.scenes)

    def load(self, index: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        scene = self.scenes[index]
        item: dict[str, Any] = {key: self.renderers[key].render_toy(scene) for key in (keys or self.keys)}
        item["label"] = scene.concept
        return item

    def label(self, index: int) -> int:
        return self.scenes[index].concept

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        renderer = self.renderers[key]
        config = getattr(renderer, "config", None)
        described = config.model_dump(mode="json") if config is not None else None
        return f"toy:{len(self)}:{self.seed}:{getattr(renderer, 'name', key)}:" + json.dumps(described, sort_keys=True)


def read_manifest(path: str | os.PathLike[str], required: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a JSONL or CSV manifest, with file paths made absolute (relative to the manifest).

    Raises :class:`ConfigError` naming the line of a malformed row, a missing key, or missing files.
    """
    manifest = Path(path)
    if not manifest.is_file():
        raise ConfigError(f"manifest not found: {manifest}")
    rows: list[dict[str, Any]] = []
    if manifest.suffix.lower() == ".csv":
        with manifest.open(newline="") as handle:
            rows = [dict(row) for row in csv.DictReader(handle)]
        line_of = [i + 2 for i in range(len(rows))]
    else:
        line_of = []
        for number, line in enumerate(manifest.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{manifest}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{manifest}:{number}: each line must be a JSON object")
            rows.append(row)
            line_of.append(number)
    if not rows:
        raise ConfigError(f"{manifest}: the manifest has no rows")
    missing_files: list[str] = []
    for row, number in zip(rows, line_of, strict=True):
        for key in required:
            if key not in row or row[key] in (None, ""):
                raise ConfigError(f"{manifest}:{number}: row has no {key!r} (keys: {', '.join(row)}); "
                                  f"every row needs {', '.join(repr(k) for k in required)}")
            if key == "label":
                continue
            file = Path(row[key])
            file = file if file.is_absolute() else manifest.parent / file
            row[key] = str(file)
            if not file.exists():
                missing_files.append(f"line {number}: {key} {file}")
    if missing_files:
        shown = "; ".join(missing_files[:5])
        more = f" (and {len(missing_files) - 5} more)" if len(missing_files) > 5 else ""
        raise ConfigError(f"{manifest}: {len(missing_files)} file(s) not found: {shown}{more}")
    return rows


class ManifestSource(PairedSource):
    """Pairs from a manifest of ``{"image": path, "<modality>": path[, "label": name]}`` rows."""

    def __init__(self, path: str | os.PathLike[str], modality: str, class_names: Sequence[str] = CONCEPTS):
        self.path = Path(path)
        self.modality = modality
        self.rows = read_manifest(self.path, (IMAGE_KEY, modality))
        self.keys = (IMAGE_KEY, modality)
        self.class_index = {name: i for i, name in enumerate(class_names)}

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, index: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        row = self.rows[index]
        item: dict[str, Any] = {key: row[key] for key in (keys or self.keys)}
        item["label"] = self.label(index)
        return item

    def label(self, index: int) -> int | None:
        value = self.rows[index].get("label")
        return None if value is None else self.class_index.get(str(value))

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        stat = self.path.stat()
        return f"manifest:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{key}"


def expand_shards(pattern: str) -> list[str]:
    """``data/a-{000..009}.tar`` → the ten paths (WebDataset brace notation)."""
    import braceexpand

    return list(braceexpand.braceexpand(pattern))


class ShardSource(PairedSource):
    """Random access into WebDataset tar shards (members ``<key>.<ext>`` grouped by key).

    The shards are indexed once (member offsets), so any item can be read by position: the data order
    stays a pure function of (seed, epoch, step), which resumable training needs. Members are extracted
    to a per-process temporary directory and handed to plugins as file paths.
    """

    def __init__(self, pattern: str, modality: str, extensions: dict[str, Sequence[str]] | None = None):
        self.paths = expand_shards(pattern)
        self.modality = modality
        self.keys = (IMAGE_KEY, modality)
        self.extensions = extensions or {}
        self.index: list[dict[str, tuple[int, int, int, str]]] = []
        for shard_number, shard in enumerate(self.paths):
            if not Path(shard).is_file():
                raise ConfigError(f"shard not found: {shard}")
            groups: dict[str, dict[str, tuple[int, int, int, str]]] = {}
            with tarfile.open(shard) as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, _, ext = member.name.partition(".")
                    groups.setdefault(key, {})[ext] = (shard_number, member.offset_data, member.size, ext)
            for key, members in groups.items():
                item = {}
                for wanted in self.keys:
                    match = self._pick(wanted, members)
                    if match is None:
                        raise ConfigError(f"{shard}: sample {key!r} has no {wanted!r} member "
                                          f"(members: {', '.join(members)})")
                    item[wanted] = match
                self.index.append(item)
        self._tmp: str | None = None

    def _pick(self, wanted: str, members: dict[str, tuple[int, int, int, str]]) -> Any:
        for ext, value in members.items():
            if ext == wanted or ext.startswith(wanted + ".") or ext in self.extensions.get(wanted, ()):
                return value
        return None

    def __len__(self) -> int:
        return len(self.index)

    def load(self, index: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="bindcore-shards-")
        item: dict[str, Any] = {"label": None}
        for key in keys or self.keys:
            shard, offset, size, ext = self.index[index][key]
            with open(self.paths[shard], "rb") as handle:
                handle.seek(offset)
                payload = handle.read(size)
            target = Path(self._tmp) / f"{index}.{ext}"
            target.write_bytes(payload)
            item[key] = str(target)
        return item

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        stats = [(p, Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in self.paths]
        return f"shards:{key}:" + json.dumps(stats)

