"""Modalities whose embeddings are known by construction, for tests of ``bindcore benchmark`` and of readers.

``KeywordText`` embeds a text as the one-hot of the vocabulary word it contains; ``VectorFile`` embeds a ``.npy``
file as its (optionally rotated) vector. So a labelled file holding ``e_dog`` is classified as "dog" whatever the
prompt template, and every metric of a benchmark run can be computed by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from bindcore.config import ModalityConfig
from bindcore.errors import InputError
from bindcore.hookspecs import hookimpl
from bindcore.modality_base import Modality

VOCAB = ("dog", "cat", "bird", "fish")


class KeywordText(Modality):
    name = "text"
    trainable = False

    @property
    def embed_dim(self) -> int:
        return len(VOCAB)

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = []
        for text in inputs:
            words = [i for i, word in enumerate(VOCAB) if word in re.findall(r"[a-z]+", str(text).lower())]
            if not isinstance(text, str) or len(words) != 1:
                raise InputError(text, f"expected a text naming exactly one of {VOCAB}")
            rows.append(F.one_hot(torch.tensor(words[0]), len(VOCAB)).float())
        return torch.stack(rows)

    def encode(self, x: Tensor) -> Tensor:
        return x

    def project(self, h: Tensor) -> Tensor:
        return F.normalize(h, dim=-1)


class VectorConfig(ModalityConfig):
    rotation_seed: int | None = Field(None, description="rotate every vector by a fixed random orthogonal matrix")


class VectorFile(Modality):
    name = "vec"
    Config = VectorConfig

    @property
    def embed_dim(self) -> int:
        return len(VOCAB)

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = []
        for item in inputs:
            try:
                array = np.load(item, allow_pickle=False)
            except (OSError, ValueError) as error:
                raise InputError(item, f"not a .npy file ({error})") from None
            rows.append(torch.from_numpy(np.asarray(array, dtype=np.float32)))
        return torch.stack(rows)

    def encode(self, x: Tensor) -> Tensor:
        if self.config.rotation_seed is None:
            return x
        generator = torch.Generator().manual_seed(self.config.rotation_seed)
        rotation, _ = torch.linalg.qr(torch.randn(len(VOCAB), len(VOCAB), generator=generator))
        return x @ rotation

    def project(self, h: Tensor) -> Tensor:
        return F.normalize(h, dim=-1)


class KnownPlugin:
    @hookimpl
    def register_modalities(self, register: Any) -> None:
        register(KeywordText)
        register(VectorFile)


def known_registry() -> Any:
    from bindcore.plugins import Registry

    registry = Registry(load_entry_points=False)
    registry.add_plugin(KnownPlugin(), name="bind-known", version="0")
    return registry


def save_model(folder: Path, **vec_options: Any) -> Path:
    """A model directory (``bindcore convert`` layout) holding ``text`` and ``vec``."""
    KeywordText().save(folder / "text")
    VectorFile(**vec_options).save(folder / "vec")
    return folder


def write_vector(path: Path, vector: Sequence[float]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(vector, dtype=np.float32))
    return str(path)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path
