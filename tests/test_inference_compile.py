"""``BindModel(compile=True)``: off by default, and the compiled forward gives the eager embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from bindcore import Modality, ModalityConfig
from bindcore.inference import BindModel
from bindcore.nn import ProjectionHead, Transformer


class TinyConfig(ModalityConfig):
    width: int = 16
    dim: int = 8


class Tiny(Modality):
    """Vectors of 6 floats read as 3 tokens of 2, through one transformer block and a projection head."""

    name = "tiny"
    Config = TinyConfig

    def __init__(self, config: TinyConfig | None = None, **options: Any):
        super().__init__(config, **options)
        torch.manual_seed(0)
        self.stem = nn.Linear(2, self.config.width)
        self.trunk = Transformer(self.config.width, 1, 2)
        self.head = ProjectionHead(self.config.width, self.config.dim)

    @property
    def embed_dim(self) -> int:
        return self.config.dim

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        return torch.tensor([list(map(float, item)) for item in inputs]).reshape(len(inputs), 3, 2)

    def encode(self, x: Tensor) -> Tensor:
        return self.trunk(self.stem(x))[:, 0]

    def project(self, h: Tensor) -> Tensor:
        return self.head(h)


def test_compile_is_off_by_default():
    model = BindModel([Tiny()])
    assert not model.use_compile
    model.embed({"tiny": [[0.0] * 6]})
    assert model._compiled == {}


def test_compiled_embeddings_match_eager_including_a_partial_last_batch():
    items = torch.randn(5, 6, generator=torch.Generator().manual_seed(1)).tolist()
    eager = BindModel([Tiny()], batch_size=2).embed({"tiny": items})["tiny"]
    model = BindModel([Tiny()], batch_size=2, compile=True)
    compiled = model.embed({"tiny": items})["tiny"]
    assert len(model._compiled) == 1  # one compiled forward for the modality (batches of 2, then 1)
    assert compiled.shape == eager.shape == (5, 8)
    assert torch.allclose(compiled, eager, atol=1e-5, rtol=0)
