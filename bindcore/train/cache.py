"""Cached anchor embeddings: the frozen anchor's image embeddings of a dataset, computed once into a
memory-mapped ``.npy`` file and reused every epoch.

A JSON manifest next to the array records what produced it (anchor fingerprint, data fingerprint, image
preprocessing config, shape); a cache whose manifest does not match is stale and is recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bindcore.data.batches import SourceChunks
from bindcore.data.sources import IMAGE_KEY, PairedSource
from bindcore.io import atomic_file


class AnchorCache:
    """Read-only view of cached embeddings; opens the memory map lazily (so it pickles cheaply to workers)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._array: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_array": None}

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return int(self.array.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def rows(self, indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.array[np.asarray(indices)]))


def cache_key(anchor_fingerprint: str, data_fingerprint: str, image_config: dict[str, Any]) -> dict[str, Any]:
    return {"format": "bindcore-anchor-cache/1", "anchor": anchor_fingerprint, "data": data_fingerprint,
            "image_config": image_config}


def cache_paths(cache_dir: Path, key: dict[str, Any], prefix: str = "anchor") -> tuple[Path, Path]:
    """The array and manifest paths of the cache that ``key`` names."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir / f"{prefix}-{digest}.npy", cache_dir / f"{prefix}-{digest}.json"


def is_fresh(array_path: Path, manifest_path: Path, key: dict[str, Any], count: int) -> bool:
    if not (array_path.is_file() and manifest_path.is_file()):
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError:
        return False
    return manifest.get("key") == key and manifest.get("count") == count


@torch.no_grad()
def build_anchor_cache(anchor: Any, source: PairedSource, image_preprocessor: Any, cache_dir: Path, *,
                       workers: int = 0, batch_size: int = 128, device: torch.device | str = "cpu",
                       log: Any = print) -> AnchorCache:
    """Embed every image of ``source`` with the frozen anchor (unless a fresh cache exists) and return it."""
    image_config = image_preprocessor.config.model_dump(mode="json") if hasattr(image_preprocessor, "config") else {}
    key = cache_key(anchor.fingerprint(), source.fingerprint(IMAGE_KEY), image_config)
    array_path, manifest_path = cache_paths(Path(cache_dir), key)
    if is_fresh(array_path, manifest_path, key, len(source)):
        return AnchorCache(array_path)
    if manifest_path.is_file():
        log(f"anchor cache {array_path.name} is stale (anchor, data or preprocessing changed): recomputing")
    array_path.parent.mkdir(parents=True, exist_ok=True)
    # open_memmap takes a path, not a handle: a hidden name unique to this process and call, like atomic_file's.
    temporary = array_path.with_name(f".{array_path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}.npy")
    output = None
    loader = torch.utils.data.DataLoader(
        SourceChunks(source, IMAGE_KEY, image_preprocessor, batch_size), batch_size=None, num_workers=workers,
        generator=torch.Generator())
    start = 0
    try:
        for images in loader:
            embeddings = anchor.encode_image(images.to(device)).float().cpu().numpy()
            if output is None:
                output = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float32,
                                                   shape=(len(source), embeddings.shape[1]))
            output[start:start + len(embeddings)] = embeddings
            start += len(embeddings)
        assert output is not None
        output.flush()
        del output
        os.replace(temporary, array_path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    with atomic_file(manifest_path, "w") as handle:
        handle.write(json.dumps({"key": key, "count": len(source)}, indent=2))
    return AnchorCache(array_path)


__all__ = ["AnchorCache", "build_anchor_cache", "cache_key"]
