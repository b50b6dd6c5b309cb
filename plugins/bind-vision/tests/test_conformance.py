"""bindcore's conformance kit on the vision modality (a tiny random anchor, no downloads): one test per check.

Vision wraps the frozen anchor's image tower (``trainable = False``), so the kit skips the gradient and toy-binding
checks with that reason.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from bind_vision import VisionModality
from hypothesis import strategies as st
from PIL import Image

from bindcore.anchor import tiny_anchor_config
from bindcore.testing import ModalityConformance

TINY = {"anchor": {"arch": tiny_anchor_config(embed_dim=16, image_size=32, patch_size=8, width=32, layers=1,
                                              heads=2)}}
MODES = ["L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "F"]


@st.composite
def images(draw: st.DrawFn) -> object:
    """PIL images of many modes, and uint8/float arrays (H, W[, C]), of any size from 1x1."""
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["pil", "uint8", "float32"]))
    if kind == "uint8":
        return rng.integers(0, 256, (height, width, draw(st.sampled_from([1, 3, 4]))), dtype=np.uint8)
    if kind == "float32":
        return rng.random((height, width, 3)).astype(np.float32)
    mode = draw(st.sampled_from(MODES))
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == "F":
        return Image.fromarray(rng.uniform(0, 255, (height, width)).astype(np.float32))
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)


class TestVisionConformance(ModalityConformance):
    modality = VisionModality
    config = TINY
    inputs = images()
    invalid_inputs = (
        np.zeros((0, 4, 3), dtype=np.uint8),                    # empty image
        np.array([[[np.nan, 0.0, 0.0]]], dtype=np.float32),     # NaN pixels
        "/nonexistent/photo.jpg",                               # missing file
        12,                                                     # not an image
    )
    known_failures: ClassVar[dict[str, str]] = {}
