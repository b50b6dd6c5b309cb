"""Parity with the reference ImageBind (small random-weight model in ../shared/imagebind_vectors).

The reference multiplies the unit thermal embedding by a fixed 10 (``log_logit_scale`` = log 10); bindcore
returns the unit vector, so reference outputs are L2-normalised before comparing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bind_thermal import ThermalModality

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def reference(parity_dir):
    state = torch.load(parity_dir / "small_model" / "state_dict.pt", map_location="cpu", weights_only=True)
    model = ThermalModality.from_imagebind(state, num_heads=4).eval()
    x = torch.from_numpy(np.load(parity_dir / "model_inputs" / "thermal.npy"))
    return model, x, parity_dir / "small_model" / "outputs"


def test_embeddings_match_the_reference(reference):
    model, x, outputs = reference
    with torch.no_grad():
        z = model(x).numpy()
    ref = np.load(outputs / "main_thermal_embedding.npy")
    np.testing.assert_allclose(np.linalg.norm(ref, axis=1), 10.0, rtol=1e-5)  # the fixed ×10 post-scale
    assert np.abs(z - ref / np.linalg.norm(ref, axis=1, keepdims=True)).max() <= 1e-4


def test_tokens_trunk_and_head_match_the_reference(reference):
    model, x, outputs = reference
    with torch.no_grad():
        tokens = model.encoder.tokens(x)
        trunk = model.encoder.trunk(tokens)
        head = model.head.proj(model.head.norm(trunk[:, 0]))
    np.testing.assert_allclose(tokens[0].numpy(), np.load(outputs / "main_thermal_tokens_first.npy"), atol=1e-5)
    np.testing.assert_allclose(trunk[0].numpy(), np.load(outputs / "main_thermal_trunk_first.npy"), atol=1e-4)
    np.testing.assert_allclose(head.numpy(), np.load(outputs / "main_thermal_head.npy"), atol=1e-4)


def test_default_preprocessing_reproduces_the_stored_model_inputs(reference, parity_dir):
    model, x, _ = reference
    files = [parity_dir / "fixtures" / "thermal" / f"thermal_{n}.png" for n in "ab"]
    assert torch.equal(model.preprocess(files), x)
