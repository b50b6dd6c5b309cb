"""Preprocessing parity with the reference ImageBind (``imagebind.data.load_and_transform_vision_data``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bindcore.errors import InputError

pytestmark = pytest.mark.parity

INPUTS = ["bird_image", "car_image", "dog_image",
          "gen_gray_640x480", "gen_portrait_257x401", "gen_rgba_300x225", "gen_small_150x97"]
#: Suggested tolerance of the vectors' README: one 8-bit level over the smallest std (exact with Pillow 13).
TOLERANCE = 1.0 / 255.0 / 0.26130258


def _source(vectors: Path, name: str) -> Path:
    folder = "assets" if name.endswith("_image") else "images"
    return vectors / "fixtures" / folder / (f"{name}.jpg" if folder == "assets" else f"{name}.png")


@pytest.mark.parametrize("name", INPUTS)
def test_matches_reference_preprocessing(vectors: Path, vision_224, name: str) -> None:
    expected = np.load(vectors / "preprocessed" / "vision" / f"{name}.npy")
    got = vision_224.preprocess([_source(vectors, name)])
    assert got.shape == (1, *expected.shape) and got.dtype.is_floating_point
    diff = np.abs(got[0].numpy() - expected)
    assert diff.max() <= TOLERANCE, f"{name}: max abs diff {diff.max():.3g}"
    assert diff.mean() <= 1e-3, f"{name}: mean abs diff {diff.mean():.3g} (systematic offset?)"


def test_batch_equals_items_and_every_input_form_agrees(vectors: Path, vision_224) -> None:
    paths = [_source(vectors, n) for n in INPUTS[:3]]
    batch = vision_224.preprocess([str(p) for p in paths])
    for row, path in zip(batch, paths, strict=True):
        rgb = Image.open(path).convert("RGB")
        pixels = np.asarray(rgb)
        import torch

        forms = [path, rgb, pixels, pixels.astype(np.float32) / 255.0,
                 torch.from_numpy(pixels.copy()).permute(2, 0, 1)]
        for form in forms:
            got = vision_224.preprocess([form])[0]
            assert np.array_equal(got.numpy(), row.numpy()), type(form).__name__
        with pytest.raises(InputError, match="permute"):  # tensors are CHW: an HWC tensor is not guessed at
            vision_224.preprocess([torch.from_numpy(pixels.copy())])
