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


def test_embed_cli_compile_flag_gives_the_eager_embeddings(tmp_path):
    """``bindcore embed --compile`` reaches BindModel(compile=True) and writes the same rows as eager."""
    import numpy as np
    import pytest
    from click.testing import CliRunner

    import bindcore
    from bindcore.cli import cli

    if "imu" not in bindcore.list_modalities():
        pytest.skip("needs the bind-imu plugin")
    options = {"width": 32, "num_layers": 1, "num_heads": 2, "embed_dim": 16}
    bindcore.modality("imu", **options).save(tmp_path / "imu")
    recording = tmp_path / "walk.npy"
    np.save(recording, np.random.default_rng(0).standard_normal((6, 2000)).astype(np.float32))
    outputs = []
    for flag in ([], ["--compile"]):
        out = tmp_path / f"emb{len(flag)}.npy"
        result = CliRunner().invoke(cli, ["embed", "-m", "imu", str(recording), str(recording), "-o", str(out),
                                          "--model", str(tmp_path / "imu"), *flag])
        assert result.exit_code == 0, result.output
        outputs.append(np.load(out))
    assert outputs[0].shape == (2, 16)
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-5)
