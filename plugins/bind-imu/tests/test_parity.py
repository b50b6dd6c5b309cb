"""Parity with the reference ImageBind IMU branch (small random-weight model in the shared vectors).

The reference's last step multiplies by a fixed 5 (``log_logit_scale``): a common scale, so the
L2-normalised reference embedding is what bindcore must reproduce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from bind_imu import ImuModality

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def reference_state(request: pytest.FixtureRequest) -> dict[str, torch.Tensor]:
    parity_dir: Path = request.getfixturevalue("parity_dir")
    return torch.load(parity_dir / "small_model" / "state_dict.pt", map_location="cpu", weights_only=True)


def _outputs(parity_dir: Path, name: str) -> torch.Tensor:
    return torch.from_numpy(np.load(parity_dir / "small_model" / "outputs" / f"main_imu_{name}.npy"))


def test_small_model_embeddings_match(parity_dir: Path, reference_state: dict[str, torch.Tensor]) -> None:
    model = ImuModality.from_imagebind(reference_state, num_heads=4).eval()
    assert model.config.width == 64 and model.config.num_layers == 2 and model.config.embed_dim == 32
    inputs = torch.from_numpy(np.load(parity_dir / "model_inputs" / "imu.npy"))  # (3, 6, 2000)
    with torch.no_grad():
        tokens = model.encoder.tokens(inputs[:1])[0]
        z = model(inputs[:, None])  # one window per item
    assert (tokens - _outputs(parity_dir, "tokens_first")).abs().max() <= 1e-4
    reference = F.normalize(_outputs(parity_dir, "embedding"), dim=-1)
    assert (z - reference).abs().max() <= 1e-4


def test_fixture_files_preprocess_to_the_model_inputs(parity_dir: Path,
                                                      reference_state: dict[str, torch.Tensor]) -> None:
    """The (6, 2000) fixture .npy files are 5 s at the default 400 Hz: preprocessing is the identity."""
    model = ImuModality.from_imagebind(reference_state, num_heads=4, num_windows=1)
    files = [parity_dir / "fixtures" / "imu" / f"imu_{c}.npy" for c in "abc"]
    batch = model.preprocess(files)
    assert torch.equal(batch[:, 0], torch.from_numpy(np.load(parity_dir / "model_inputs" / "imu.npy")))
    reference = F.normalize(_outputs(parity_dir, "embedding"), dim=-1)
    assert (model.embed(files) - reference).abs().max() <= 1e-4


def test_imagebind_huge_layout_loads_into_the_default_config(parity_dir: Path) -> None:
    """Every IMU key and shape of ``imagebind_huge`` (no weights: zeros of the listed shapes) fits the defaults."""
    state = {}
    for line in (parity_dir / "imagebind_huge_state_dict_keys.txt").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and ".imu." in fields[0]:
            shape = tuple(int(s) for s in fields[1].strip("()").split(",") if s.strip())
            state[fields[0]] = torch.zeros(shape)
    assert len(state) == 5 + 6 * 14 + 3 + 1
    model = ImuModality.from_imagebind(state)  # num_heads defaults to 8
    assert model.config == ImuModality().config
