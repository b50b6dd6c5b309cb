"""Property tests: any image size (≥ 1×1) and mode → a finite, deterministic (3, S, S) float32 tensor."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F"]


@st.composite
def pil_images(draw) -> Image.Image:
    width = draw(st.integers(1, 48))
    height = draw(st.integers(1, 48))
    mode = draw(st.sampled_from(MODES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "I":
        return Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.int32))
    if mode == "F":
        return Image.fromarray(rng.uniform(0, 255, (height, width)).astype(np.float32))
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return rgb.convert(mode)


@st.composite
def array_images(draw) -> np.ndarray | torch.Tensor:
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4]))
    shape = (height, width) if channels is None else (height, width, channels)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["uint8", "uint16", "float32", "float64", "tensor"]))
    if kind == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if kind == "uint16":
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    if kind.startswith("float"):
        return rng.random(shape).astype(kind)
    pixels = torch.from_numpy(rng.random(shape).astype(np.float32))  # built HWC like the arrays ...
    return pixels if channels is None else pixels.permute(2, 0, 1).contiguous()  # ... passed CHW, as documented


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(pil_images(), array_images()), min_size=1, max_size=3))
def test_any_image_gives_a_finite_deterministic_square_tensor(vision_32, batch) -> None:
    first = vision_32.preprocess(batch)
    second = vision_32.preprocess(batch)
    assert first.shape == (len(batch), 3, 32, 32)
    assert first.dtype == torch.float32
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)
    # Pixel values stay inside the normalised [0, 1] range.
    mean = torch.tensor(vision_32.config.mean).view(1, 3, 1, 1)
    std = torch.tensor(vision_32.config.std).view(1, 3, 1, 1)
    pixels = first * std + mean
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5


@settings(max_examples=30, deadline=None)
@given(height=st.integers(1, 12), width=st.integers(1, 12), channels=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_layout_follows_the_type_never_the_shape(vision_32, height, width, channels, seed) -> None:
    """A numpy HWC array and the same pixels as a CHW tensor are one image, whatever the sizes (even H or W ≤ 4)."""
    hwc = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    chw = torch.from_numpy(hwc).permute(2, 0, 1)
    from_pil = vision_32.preprocess([Image.fromarray(hwc[..., 0] if channels == 1 else hwc)])
    assert torch.equal(vision_32.preprocess([hwc]), from_pil)
    assert torch.equal(vision_32.preprocess([chw]), from_pil)
