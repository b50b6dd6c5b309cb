"""The index of a set of WebDataset shards: how many samples each shard holds (what plans a streamed epoch without
reading the data first) and a fingerprint of what wrote them (source and preprocessing).

Written by ``bindcore shard`` next to the shards it writes, or by ``bindcore shard RECIPE --index-only``, which
streams existing shards once and counts their samples. Shards may be local paths, ``pipe:`` commands or URLs
(:func:`open_shard`: webdataset's ``gopen``, then fsspec for other schemes).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from bindcore.errors import ConfigError
from bindcore.io import atomic_file

INDEX_FORMAT = "bindcore-shards/1"
#: The index file a shard folder holds when the recipe names none.
INDEX_FILE = "index.json"


def is_url(pattern: str) -> bool:
    """Whether a shard pattern is a ``pipe:`` command or a URL (never made relative to the recipe's folder)."""
    return pattern.startswith("pipe:") or "://" in pattern


def shard_name(url: str) -> str:
    """The file name a shard is known by in its index: ``data/a-000.tar``, ``s3://b/a-000.tar`` and
    ``pipe:curl -s https://host/a-000.tar`` are all ``a-000.tar``."""
    if url.startswith("pipe:"):
        words = shlex.split(url[len("pipe:"):]) or [url]
        url = next((w for w in reversed(words) if w.endswith(".tar") or "/" in w), words[-1])
    return os.path.basename(urlparse(url).path if "://" in url else url)


def open_shard(url: str) -> IO[bytes]:
    """A binary stream of one shard: local paths, ``file:``, ``pipe:`` and the schemes webdataset opens itself
    (http(s) via curl, gs, hf, ...), then any other scheme through fsspec (s3://, az://, memory://, ...)."""
    import importlib

    wds_gopen = importlib.import_module("webdataset.gopen")  # the package exports the function under that name

    scheme = urlparse(url).scheme if "://" in url or url.startswith("pipe:") else ""
    if scheme in ("", "file", "pipe") or scheme in wds_gopen.gopen_schemes:
        try:
            return wds_gopen.gopen(url, "rb")
        except FileNotFoundError:
            raise ConfigError(f"shard not found: {url}") from None
    try:
        import fsspec
    except ImportError:
        raise ConfigError(f"{url}: the {scheme}:// scheme is opened through fsspec, which is not installed "
                          f"(pip install fsspec and the package of its {scheme} file system)") from None
    try:
        return fsspec.open(url, "rb").open()
    except (FileNotFoundError, ValueError, ImportError) as error:
        raise ConfigError(f"{url}: cannot open the shard ({type(error).__name__}: {error})") from None


def tar_samples(url: str, stream: IO[bytes]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) of each sample of a tar stream, in order (WebDataset's grouping: the key ends at
    the first dot of the file name; consecutive members with one key are one sample)."""
    from webdataset.tariterators import tar_file_iterator

    from bindcore.data.sources import split_member_name

    key: str | None = None
    members: dict[str, bytes] = {}
    try:
        for member in tar_file_iterator(stream):
            member_key, ext = split_member_name(url, member["fname"])
            if member_key != key and key is not None:
                yield key, members
                members = {}
            key = member_key
            members[ext] = member["data"]
    except ConfigError:
        raise
    except Exception as error:  # tarfile, EOF, a pipe that failed: name the shard
        raise ConfigError(f"{url}: not a readable tar stream ({type(error).__name__}: {error})") from None
    if key is not None:
        yield key, members


@dataclass
class ShardIndex:
    """Samples per shard (by :func:`shard_name`), plus what made them. ``preprocessed``: the shards hold the
    modality's preprocessed tensors, not raw files (``fingerprint`` then names the plugin config that made them)."""

    items: dict[str, int] = field(default_factory=dict)
    modality: str | None = None
    preprocessed: bool = False
    fingerprint: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def total(self) -> int:
        return sum(self.items.values())

    def counts(self, urls: Sequence[str], where: str) -> list[int]:
        """The sample count of each shard of ``urls``; a shard the index does not list is an error naming it."""
        missing = [url for url in urls if shard_name(url) not in self.items]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise ConfigError(f"{where}: the shard index {self.path} does not list {missing[0]}{more}; rebuild it "
                              f"with: bindcore shard RECIPE --modality {self.modality or 'NAME'} --index-only")
        return [self.items[shard_name(url)] for url in urls]

    def to_json(self) -> dict[str, Any]:
        return {"format": INDEX_FORMAT, "modality": self.modality, "preprocessed": self.preprocessed,
                "fingerprint": self.fingerprint, "total": self.total,
                "shards": [{"name": name, "items": count} for name, count in self.items.items()]}

    def save(self, path: str | os.PathLike[str]) -> Path:
        self.path = Path(path)
        with atomic_file(self.path, "w") as handle:
            handle.write(json.dumps(self.to_json(), indent=1) + "\n")
        return self.path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, fix: str = "") -> ShardIndex:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"shard index not found: {path}; a streamed epoch is planned from it (samples per "
                              f"shard). {fix or 'Write one with: bindcore shard RECIPE --modality NAME --index-only'}")
        try:
            raw = json.loads(path.read_text())
            if raw.get("format") != INDEX_FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {INDEX_FORMAT!r}")
            items = {str(s["name"]): int(s["items"]) for s in raw["shards"]}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ConfigError(f"{path}: not a bindcore shard index ({type(error).__name__}: {error}); rebuild it "
                              f"with: bindcore shard RECIPE --modality NAME --index-only") from None
        return cls(items, raw.get("modality"), bool(raw.get("preprocessed")), dict(raw.get("fingerprint") or {}),
                   path)


def scan_shards(urls: Sequence[str], *, progress: bool = False) -> dict[str, int]:
    """Samples per shard (by :func:`shard_name`), counted by streaming each shard once."""
    from tqdm import tqdm

    items: dict[str, int] = {}
    for url in tqdm(urls, desc="index", unit="shard", disable=not progress):
        with open_shard(url) as stream:
            items[shard_name(url)] = sum(1 for _ in tar_samples(url, stream))
    return items
