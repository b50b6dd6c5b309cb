"""Sources of (image, modality) pairs. Each item is a dict of raw inputs that plugins' ``preprocess`` accepts:
``{"image": ..., "<modality>": ..., "label": int | None}``. Loading reads only what an item names (a
:class:`ShardSource` extracts its members to disk, freed by ``release``); preprocessing, which may read the
files items name, happens in DataLoader workers (see :mod:`bindcore.data.batches`)."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import tarfile
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindcore.errors import ConfigError
from bindcore.toyworld import CONCEPTS, Scene, generate_scenes

IMAGE_KEY = "image"


class PairedSource:
    """Random-access pairs. ``keys`` are the raw-input keys an item holds (``image`` and one modality)."""

    keys: tuple[str, ...]
    #: The modality's items are preprocessed tensors (``bindcore shard --preprocessed``), not raw inputs.
    preprocessed: bool = False

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

    def describe(self, index: int) -> str:
        """Where item ``index`` comes from, for error messages (a manifest line, a shard and sample key)."""
        return f"item {index}"

    def release(self, item: dict[str, Any]) -> None:
        """Called once the raw inputs of a loaded ``item`` were preprocessed (frees what ``load`` extracted)."""


class ToySource(PairedSource):
    """Toy-world scenes rendered on demand by each modality's ``render_toy`` (deterministic in ``seed``)."""

    def __init__(self, count: int, seed: int, renderers: dict[str, Any],
                 nuisance: Mapping[str, tuple[float, float]] | None = None):
        self.scenes: list[Scene] = generate_scenes(count, seed, nuisance=nuisance)
        self.seed = seed
        self.nuisance = dict(nuisance or {})
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
        shifted = f":{json.dumps(self.nuisance, sort_keys=True)}" if self.nuisance else ""  # default: as before
        return (f"toy:{len(self)}:{self.seed}{shifted}:{getattr(renderer, 'name', key)}:"
                + json.dumps(described, sort_keys=True))

    def describe(self, index: int) -> str:
        return f"toy scene {index} (seed {self.seed})"


#: How many problems of one manifest an error message lists (the count of the rest follows).
PROBLEMS_SHOWN = 20


@dataclass
class ManifestScan:
    """Every row of a manifest (file paths made absolute), the line each came from, and every problem found."""

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    read: int = 0  #: non-empty rows read, good or bad
    files: int = 0

    def raise_problems(self) -> None:
        if self.problems:
            raise ConfigError("\n  ".join([f"{self.path}: {len(self.problems)} problem(s) in the manifest:",
                                            *listed(self.problems)]))


def listed(problems: Sequence[str], shown: int = PROBLEMS_SHOWN) -> list[str]:
    """The first ``shown`` problems, then a line counting the rest."""
    more = [f"... and {len(problems) - shown} more"] if len(problems) > shown else []
    return [*problems[:shown], *more]


def _manifest_records(manifest: Path, scan: ManifestScan) -> list[tuple[int, Any]]:
    """(line number, parsed row) of every non-empty row; unparsable lines go to ``scan.problems``."""
    records: list[tuple[int, Any]] = []
    if manifest.suffix.lower() == ".csv":
        with manifest.open(newline="") as handle:
            reader = csv.DictReader(handle)
            try:
                for row in reader:
                    records.append((reader.line_num, dict(row)))
                    scan.read += 1
            except csv.Error as exc:
                scan.problems.append(f"{manifest}:{reader.line_num}: not valid CSV ({exc})")
        return records
    with manifest.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            scan.read += 1
            try:
                records.append((number, json.loads(line.rstrip("\r\n"))))
            except json.JSONDecodeError as exc:
                scan.problems.append(f"{manifest}:{number}: not valid JSON ({exc.msg}, column {exc.colno})")
    return records


def scan_manifest(path: str | os.PathLike[str], required: Sequence[str]) -> ManifestScan:
    """Read every row of a JSONL or CSV manifest and check that each names the ``required`` keys and that each
    file it names exists; collects every problem (``path:line: ...``) instead of stopping at the first."""
    manifest = Path(path)
    scan = ManifestScan(manifest)
    if not manifest.is_file():
        scan.problems.append(f"{manifest}: manifest not found")
        return scan
    for number, row in _manifest_records(manifest, scan):
        if not isinstance(row, dict):
            scan.problems.append(f"{manifest}:{number}: each line must be a JSON object, got {type(row).__name__}")
            continue
        good = True
        for key in required:
            value = row.get(key)
            if value in (None, ""):
                scan.problems.append(f"{manifest}:{number}: row has no {key!r} (keys: {', '.join(map(str, row))}); "
                                     f"every row needs {', '.join(repr(k) for k in required)}")
                good = False
                continue
            if key == "label":
                continue
            if not isinstance(value, str):
                scan.problems.append(f"{manifest}:{number}: {key} must be a file path (a string), got {value!r}")
                good = False
                continue
            file = Path(value)
            file = file if file.is_absolute() else manifest.parent / file
            row[key] = str(file)
            scan.files += 1
            if not file.is_file():
                what = "is a directory, not a file" if file.is_dir() else "file not found"
                scan.problems.append(f"{manifest}:{number}: {key} {what}: {file}")
                good = False
        if good:
            scan.rows.append(row)
            scan.lines.append(number)
    if not scan.rows and not scan.problems:
        scan.problems.append(f"{manifest}: the manifest has no rows")
    return scan


def read_manifest(path: str | os.PathLike[str], required: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of a JSONL or CSV manifest, with file paths made absolute (relative to the manifest).

    Raises :class:`ConfigError` listing (up to :data:`PROBLEMS_SHOWN` of) every malformed row, missing key and
    missing file, each with its line number.
    """
    scan = scan_manifest(path, required)
    scan.raise_problems()
    return scan.rows


class ManifestSource(PairedSource):
    """Pairs from a manifest of ``{"image": path, "<modality>": path[, "label": name]}`` rows."""

    def __init__(self, path: str | os.PathLike[str], modality: str, class_names: Sequence[str] = CONCEPTS):
        self.path = Path(path)
        self.modality = modality
        scan = scan_manifest(self.path, (IMAGE_KEY, modality))
        scan.raise_problems()
        self.rows, self.lines = scan.rows, scan.lines
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

    def describe(self, index: int) -> str:
        return f"{self.path}:{self.lines[index]}"

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        stat = self.path.stat()
        return f"manifest:{self.path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{key}"


def expand_shards(pattern: str) -> list[str]:
    """``data/a-{000..009}.tar`` → the ten paths (WebDataset brace notation)."""
    import braceexpand

    return list(braceexpand.braceexpand(pattern))


# Extracted members are named "<position>.<ext>" and file names have at most 255 bytes on common file systems:
# room for a 20-digit position and the dot.
MAX_EXTENSION_BYTES = 255 - 21


def split_member_name(shard: str, name: str) -> tuple[str, str]:
    """``dir.v1/000001.audio.wav`` → (``dir.v1/000001``, ``audio.wav``): WebDataset's rule, the key ends at the first
    dot of the file name (not of the whole path). Absolute names, ``..`` and names without an extension are refused.
    Extracted members are named ``<position>.<ext>``: the key never reaches the file system, the extension does (plugins
    tell formats by it), so one too long for a file name is refused too."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    odd = next((c for c in name if c in "\\\x00" or not c.isprintable()), None)
    if name.startswith("/") or ".." in parts or odd is not None or not parts:
        reason = "an absolute path" if name.startswith("/") else "a '..' component" if ".." in parts else \
            f"the character {odd!r}" if odd is not None else "no file name"
        raise ConfigError(f"{shard}: member {name!r} has {reason}; WebDataset members are relative "
                          f"'<key>.<ext>' names (rewrite the shard without it)")
    stem, _, ext = parts[-1].partition(".")
    if not stem or not ext:
        raise ConfigError(f"{shard}: member {name!r} is not named '<key>.<ext>' (e.g. 000001.image.png); "
                          f"rewrite the shard without it")
    if len(ext.encode()) > MAX_EXTENSION_BYTES:
        raise ConfigError(f"{shard}: member {name!r} has an extension of {len(ext.encode())} bytes, too long for the "
                          f"file it is extracted to (at most {MAX_EXTENSION_BYTES}); rename the member in the shard")
    return "/".join([*parts[:-1], stem]), ext


def index_shard(shard: str) -> dict[str, dict[str, tuple[int, int]]]:
    """Sample key → {extension: (data offset, size)} of one tar shard, in member order (headers only are read)."""
    groups: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.isfile():
                    key, ext = split_member_name(shard, member.name)
                    groups.setdefault(key, {})[ext] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError, EOFError) as exc:
        after = f" after {len(groups)} samples" if groups else ""
        raise ConfigError(f"{shard}: not a readable tar file{after} ({type(exc).__name__}: {exc})") from None
    return groups


def _remove_tree(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked DataLoader worker must never remove its parent's folder
        shutil.rmtree(path, ignore_errors=True)


class ShardSource(PairedSource):
    """Random access into WebDataset tar shards (members ``<key>.<ext>`` grouped by key).

    The shards are indexed once (member offsets), so any item can be read by position: the data order
    stays a pure function of (seed, epoch, step), which resumable training needs. Plugins take file paths, so
    ``load`` extracts an item's members into one temporary folder per source (a sub-folder per worker process);
    :meth:`release` deletes them once preprocessed, and the folder goes when the source is garbage-collected or
    the process exits.
    """

    def __init__(self, pattern: str, modality: str, extensions: dict[str, Sequence[str]] | None = None):
        self.paths = expand_shards(pattern)
        self.modality = modality
        self.keys = (IMAGE_KEY, modality)
        self.extensions = extensions or {}
        self.index: list[dict[str, tuple[int, int, int, str]]] = []
        self.sample_keys: list[tuple[int, str]] = []
        for shard_number, shard in enumerate(self.paths):
            if not Path(shard).is_file():
                raise ConfigError(f"shard not found: {shard}")
            for key, members in index_shard(shard).items():
                item = {}
                for wanted in self.keys:
                    match = self._pick(wanted, members)
                    if match is None:
                        raise ConfigError(f"{shard}: sample {key!r} has no {wanted!r} member "
                                          f"(members: {', '.join(f'{key}.{ext}' for ext in members)})")
                    item[wanted] = (shard_number, *members[match], match)
                self.index.append(item)
                self.sample_keys.append((shard_number, key))
        # Made here, in the process that builds the source, so DataLoader workers (which get copies) share it.
        self._tmp = tempfile.mkdtemp(prefix="bindcore-shards-")
        self._finalizer = weakref.finalize(self, _remove_tree, self._tmp, os.getpid())

    def _pick(self, wanted: str, members: dict[str, tuple[int, int]]) -> str | None:
        for ext in members:
            if ext == wanted or ext.startswith(wanted + ".") or ext in self.extensions.get(wanted, ()):
                return ext
        return None

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_finalizer"] = None  # a copy in a worker process uses the folder; its creator removes it
        return state

    def _folder(self) -> Path:
        """This process's extraction folder, inside the source's temporary folder."""
        folder = Path(self._tmp) / str(os.getpid())
        folder.mkdir(exist_ok=True)
        return folder

    def load(self, index: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        folder = self._folder()
        item: dict[str, Any] = {"label": None}
        for key in keys or self.keys:
            shard, offset, size, ext = self.index[index][key]
            with open(self.paths[shard], "rb") as handle:
                handle.seek(offset)
                payload = handle.read(size)
            item[key] = extract_member(folder / f"{index}.{ext}", payload,
                                       f"{self.paths[shard]}: member {self.sample_keys[index][1] + '.' + ext!r}")
        return item

    def release(self, item: dict[str, Any]) -> None:
        release_members(item, self.keys)

    def describe(self, index: int) -> str:
        shard, key = self.sample_keys[index]
        return f"{self.paths[shard]} sample {key!r}"

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        stats = [(p, Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in self.paths]
        return f"shards:{key}:" + json.dumps(stats)


def extract_member(target: Path, payload: bytes, member: str) -> str:
    """Write a shard member's bytes to ``target`` for a plugin to read by path; the path as a string."""
    try:
        target.write_bytes(payload)
    except OSError as error:  # a file system with shorter names than MAX_EXTENSION_BYTES allows for
        if error.errno != errno.ENAMETOOLONG:
            raise
        raise ConfigError(f"{member} cannot be extracted to {target} (file name too long); rename the member in "
                          f"the shard, or point TMPDIR at another file system") from None
    return str(target)


def release_members(item: dict[str, Any], keys: Sequence[str]) -> None:
    """Delete the files :func:`extract_member` wrote for ``item``."""
    for key in keys:
        if isinstance(item.get(key), str):
            Path(item[key]).unlink(missing_ok=True)
