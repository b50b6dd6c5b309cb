"""Parity with the reference ImageBind (small random-weight model in ../shared/imagebind_vectors).

The reference multiplies the unit depth embedding by a fixed 5 (``log_logit_scale`` = log 5); bindcore
returns the unit vector, so reference outputs are L2-normalised before comparing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bind_depth import REFERENCE_INPUT_OPTIONS, DepthModality

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def reference(parity_dir):
    state = torch.load(parity_dir / "small_model" / "state_dict.pt", map_location="cpu", weights_only=True)
    model = DepthModality.from_imagebind(state, num_heads=4, **REFERENCE_INPUT_OPTIONS).eval()
    x = torch.from_numpy(np.load(parity_dir / "model_inputs" / "depth.npy"))
    return model, x, parity_dir / "small_model" / "outputs"


def test_embeddings_match_the_reference(reference):
    model, x, outputs = reference
    with torch.no_grad():
        z = model(x).numpy()
    ref = np.load(outputs / "main_depth_embedding.npy")
    np.testing.assert_allclose(np.linalg.norm(ref, axis=1), 5.0, rtol=1e-5)  # the fixed ×5 post-scale
    assert np.abs(z - ref / np.linalg.norm(ref, axis=1, keepdims=True)).max() <= 1e-4


def test_tokens_trunk_and_head_match_the_reference(reference):
    model, x, outputs = reference
    with torch.no_grad():
        tokens = model.encoder.tokens(x)
        trunk = model.encoder.trunk(tokens)
        head = model.head.proj(model.head.norm(trunk[:, 0]))
    np.testing.assert_allclose(tokens[0].numpy(), np.load(outputs / "main_depth_tokens_first.npy"), atol=1e-5)
    np.testing.assert_allclose(trunk[0].numpy(), np.load(outputs / "main_depth_trunk_first.npy"), atol=1e-4)
    np.testing.assert_allclose(head.numpy(), np.load(outputs / "main_depth_head.npy"), atol=1e-4)


@pytest.mark.parametrize("kind", ["m.npy", "mm.png"])
def test_reference_options_reproduce_the_stored_model_inputs(reference, parity_dir, kind):
    model, x, _ = reference
    files = [parity_dir / "fixtures" / "depth" / f"depth_{n}_{kind}" for n in "abc"]
    torch.testing.assert_close(model.preprocess(files), x, rtol=0, atol=1e-6)


def test_default_preprocessing_of_the_fixtures_is_finite(parity_dir):
    m = DepthModality(image_size=224, patch_size=16, width=16, num_layers=1, num_heads=2, embed_dim=8)
    files = [parity_dir / "fixtures" / "depth" / f"depth_{n}_mm.png" for n in "abc"]
    out = m.preprocess(files)
    assert out.shape == (3, 1, 224, 224) and torch.isfinite(out).all()
