"""Small stand-in modalities for tests and smoke runs of the trainer without the real plugins.

``StubVision``/``StubText`` play the anchor's image/caption side; ``make_feature_modality`` builds tiny
bindable modalities whose toy rendering is a noisy concept signature. Register them with
:func:`stub_registry` (a fresh registry that loads no entry points). :func:`tiny_recipe` trains them in seconds;
:func:`tiny_plugin_recipe` does the same for one real plugin's modality on its own data (a data kind's test).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from bindcore.config import ModalityConfig
from bindcore.errors import InputError
from bindcore.hookspecs import hookimpl
from bindcore.modality_base import Modality
from bindcore.toyworld import Scene, concept_code


def _loaded(item: Any) -> Any:
    """A ``.npy`` file path (manifest and shard data) → its array; anything else as is."""
    return np.load(item) if isinstance(item, (str, os.PathLike)) else item


class StubVisionConfig(ModalityConfig):
    image_size: int = Field(16, ge=4)


class StubVision(Modality):
    """Toy images: a concept-coloured square on a concept-tinted background, float ``(3, S, S)`` in [0, 1]."""

    name = "vision"
    Config = StubVisionConfig
    trainable = False
    augment_axes: ClassVar[Mapping[str, int]] = {"height": -2, "width": -1}

    def render_toy(self, scene: Scene) -> np.ndarray:
        size = self.config.image_size
        rng = scene.rng("vision")
        image = np.empty((3, size, size), dtype=np.float32)
        image[:] = concept_code(scene.concept, "stub-bg", 3)[:, None, None] * 0.5
        half = max(1, int(scene.size * size / 2))
        cx, cy = int(scene.x * size), int(scene.y * size)
        image[:, max(0, cy - half):cy + half, max(0, cx - half):cx + half] = \
            concept_code(scene.concept, "stub-fg", 3)[:, None, None]
        image = image * scene.brightness + rng.normal(0, scene.noise, image.shape).astype(np.float32)
        return np.clip(image, 0, 1)

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = []
        for item in inputs:
            array = np.asarray(_loaded(item), dtype=np.float32)
            if array.shape != (3, self.config.image_size, self.config.image_size):
                raise InputError(item, f"expected shape (3, {self.config.image_size}, {self.config.image_size})")
            rows.append(torch.from_numpy((array - 0.5) / 0.25))
        return torch.stack(rows)


class StubTextConfig(ModalityConfig):
    context_length: int = Field(16, ge=4)


class StubText(Modality):
    """Toy captions ``"a photo of a dog."``, tokenised with open_clip's BPE tokenizer."""

    name = "text"
    Config = StubTextConfig
    trainable = False

    def render_toy(self, scene: Scene) -> str:
        return f"a photo of a {scene.name}."

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        import open_clip

        for item in inputs:
            if not isinstance(item, str):
                raise InputError(item, "expected a string")
        return open_clip.tokenize(list(inputs), context_length=self.config.context_length)


class FeatureConfig(ModalityConfig):
    dim: int = Field(16, ge=2)
    width: int = Field(32, ge=2)
    embed_dim: int = Field(64, ge=2)
    drop_path: float = Field(0.0, ge=0, lt=1)


class FeatureModality(Modality):
    """A bindable toy modality: noisy per-concept signature vectors through a 2-layer MLP."""

    name = "toyfeat"
    Config = FeatureConfig
    augment_axes: ClassVar[Mapping[str, int]] = {}  # feature vectors: only noise and jitter apply

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__(config, **options)
        cfg = self.config
        self.trunk = nn.Sequential(nn.Linear(cfg.dim, cfg.width), nn.GELU(), nn.Dropout(cfg.drop_path),
                                   nn.Linear(cfg.width, cfg.width))
        self.head = nn.Linear(cfg.width, cfg.embed_dim, bias=False)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def render_toy(self, scene: Scene) -> np.ndarray:
        rng = scene.rng(self.name)
        code = concept_code(scene.concept, self.name, self.config.dim) * 2 - 1
        return (code * scene.brightness + rng.normal(0, 0.2, code.shape)).astype(np.float32)

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        rows = []
        for item in inputs:
            array = np.asarray(_loaded(item), dtype=np.float32)
            if array.shape != (self.config.dim,) or not np.isfinite(array).all():
                raise InputError(item, f"expected {self.config.dim} finite floats")
            rows.append(torch.from_numpy(array))
        return torch.stack(rows)

    def encode(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def project(self, h: Tensor) -> Tensor:
        return F.normalize(self.head(h), dim=-1)


def make_feature_modality(name: str) -> type[FeatureModality]:
    """A :class:`FeatureModality` subclass registered under ``name``."""
    return type(f"Feature_{name}", (FeatureModality,), {"name": name})


class StubPlugin:
    def __init__(self, *classes: type) -> None:
        self.classes = classes

    @hookimpl
    def register_modalities(self, register: Any) -> None:
        for cls in self.classes:
            register(cls)


def stub_registry(*feature_names: str) -> Any:
    """A fresh registry (no entry points) holding the stub vision/text and the named feature modalities."""
    from bindcore.plugins import Registry

    registry = Registry(load_entry_points=False)
    classes = [StubVision, StubText, *(make_feature_modality(n) for n in feature_names)]
    registry.add_plugin(StubPlugin(*classes), name="bindcore-stubs", version="0")
    return registry


def install_stub_registry(*feature_names: str) -> Any:
    """Make :func:`stub_registry` the process-wide registry; returns the previous one."""
    from bindcore.plugins import set_registry

    return set_registry(stub_registry(*feature_names))


def tiny_anchor(image_size: int = 16) -> dict[str, Any]:
    """The ``anchor.tiny`` block of a 16-wide, one-layer anchor (embeddings of 16): seconds to pretrain on CPU."""
    return {"embed_dim": 16, "image_size": image_size, "patch_size": 8, "width": 16, "layers": 1, "heads": 2,
            "text_width": 16, "text_layers": 1, "text_heads": 2, "context_length": 8}


def tiny_plugin_recipe(modality: str, options: dict[str, Any], data: dict[str, Any], *, image_size: int = 16,
                       **train: Any) -> dict[str, Any]:
    """A recipe mapping that trains one real plugin's ``modality`` (its plugin ``options``, embed_dim 16) on its own
    ``data`` block against :func:`tiny_anchor`: the test of a data kind, end to end. ``train`` overrides the
    modality's train settings (batch 2, one epoch)."""
    return {
        "name": f"{modality}-tiny",
        "run": {"seed": 0, "device": "cpu", "checkpoint_every": 50, "tensorboard": False, "progress": False,
                "threads": 1},
        "anchor": {"tiny": tiny_anchor(image_size)},
        "data": {"toy": {"train_scenes": 16, "eval_scenes": 10}, "workers": 0},
        "eval": {"templates": ["a photo of a {}."], "plot": False},
        "modalities": {modality: {**options, "embed_dim": 16,
                                  "train": {"batch_size": 2, "epochs": 1, "lr": 1e-3, "drop_path": 0.0, **train},
                                  "data": data}},
    }


def tiny_recipe(*feature_names: str, steps_epochs: float = 3, **run: Any) -> dict[str, Any]:
    """A recipe mapping for the stub modalities that trains in a couple of seconds (tests, smoke runs)."""
    names = feature_names or ("toya", "toyb")
    train = {"batch_size": 16, "epochs": steps_epochs, "lr": 3e-3, "temperature": 0.1}
    return {
        "name": "tiny",
        "run": {"seed": 0, "checkpoint_every": 5, "tensorboard": False, "progress": False, "threads": 1, **run},
        "anchor": {"tiny": tiny_anchor(),
                   "pretrain": {"steps": 5, "batch_size": 32, "scenes": 64, "warmup_steps": 1},
                   "image": {"image_size": 16}, "text": {"context_length": 8}},
        "data": {"toy": {"train_scenes": 64, "eval_scenes": 40}, "workers": 0},
        "eval": {"templates": ["a photo of a {}."], "plot": False},
        "modalities": {name: {"embed_dim": 16, "train": dict(train)} for name in names},
    }


def tiny_ddp_worker(rank: int, world: int, port: int, out: str, epochs: float = 2,
                    raw: dict[str, Any] | None = None) -> None:
    """One process of a gloo DDP run of :func:`tiny_recipe` (or of the recipe mapping ``raw``, for the stub
    modalities) (a ``torch.multiprocessing.spawn`` target)."""
    import os

    import torch.distributed as dist

    from bindcore.plugins import set_registry
    from bindcore.recipe import validate_recipe
    from bindcore.train.trainer import train

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    set_registry(stub_registry("toya", "toyb"))
    try:
        train(validate_recipe(raw if raw is not None else tiny_recipe(steps_epochs=epochs)), out, log=lambda _m: None)
    finally:
        dist.destroy_process_group()
