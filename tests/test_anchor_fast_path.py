"""The anchor's SDPA forward equals open_clip's own encode_image/encode_text, and falls back where it must."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from bindcore import anchor as anchor_mod
from bindcore.anchor import FrozenAnchor, load_anchor, tiny_anchor_config

SOT, EOT = 49406, 49407
TOLERANCE = 1e-5


def _arch(vision: dict[str, Any] | None = None, text: dict[str, Any] | None = None, **tiny: Any) -> dict[str, Any]:
    arch = tiny_anchor_config(embed_dim=16, **{"image_size": 16, "patch_size": 8, "width": 32, "heads": 2,
                                              "layers": 2, **tiny})
    arch["vision_cfg"].update(vision or {})
    arch["text_cfg"].update(text or {})
    return arch


def _captions(lengths: list[int], seed: int = 0, context: int = 77) -> torch.Tensor:
    """SOT, ``n`` random BPE ids, EOT, zero padding — one row per length."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), context, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, 0] = SOT
        ids[row, 1:n + 1] = torch.randint(1, 49000, (n,), generator=gen)
        ids[row, n + 1] = EOT
    return ids


def _images(anchor: FrozenAnchor, n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, *anchor.image_size, generator=torch.Generator().manual_seed(seed))


def _assert_matches_open_clip(anchor: FrozenAnchor, images: torch.Tensor, ids: torch.Tensor) -> None:
    with torch.no_grad():
        want_image = anchor.model.encode_image(images)
        want_text = anchor.model.encode_text(ids)
    torch.testing.assert_close(anchor.encode_image(images, normalize=False), want_image, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(anchor.encode_text(ids, normalize=False), want_text, atol=TOLERANCE, rtol=0)


SHAPES = {
    "two-layer": _arch(),
    "wide-text-many-heads": _arch(width=48, heads=3, layers=3, text_width=64, text_heads=8, text_layers=1),
    "larger-image": _arch(image_size=32, patch_size=4),
    "layer-scale": _arch(vision={"ls_init_value": 0.5}, text={"ls_init_value": 0.25}),
    "avg-pool-final-ln": _arch(vision={"pool_type": "avg", "final_ln_after_pool": True, "no_ln_pre": True}),
    "eos-pool": _arch(text={"pool_type": "eos", "eos_id": EOT}),
    "short-context": _arch(context_length=24),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_fast_path_equals_open_clip(name: str) -> None:
    anchor = load_anchor(arch=SHAPES[name])
    # empty, short, medium, the full context
    ids = _captions([0, 3, 11, anchor.context_length - 2], context=anchor.context_length)
    _assert_matches_open_clip(anchor, _images(anchor), ids)
    assert anchor.last_path == {"image": "sdpa", "text": "sdpa"}, anchor.fallback_reason


def test_text_is_cut_after_the_last_eot_and_an_earlier_literal_eot_pools_there(monkeypatch) -> None:
    anchor = load_anchor(arch=SHAPES["two-layer"])
    ids = _captions([2, 5, 30])
    ids[2, 4] = EOT  # a literal EOT inside the long caption: open_clip pools at the first one
    lengths: list[int] = []
    original = anchor_mod.sdpa.sdpa_blocks

    def spy(transformer: Any, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        lengths.append(x.shape[1])
        return original(transformer, x, **kwargs)

    monkeypatch.setattr(anchor_mod.frozen, "sdpa_blocks", spy)
    _assert_matches_open_clip(anchor, _images(anchor), ids)
    # The image call records 1 + patches; the text call only the positions up to the batch's last EOT (row 1).
    assert lengths[-1] == 5 + 2
    # Rows are independent of the batch they come in (the cut depends on the batch).
    alone = anchor.encode_text(ids[:1], normalize=False)
    torch.testing.assert_close(alone, anchor.encode_text(ids, normalize=False)[:1], atol=TOLERANCE, rtol=0)


FALLBACKS = {
    "vision-qk-norm": (_arch(vision={"qk_norm": True}), "image"),
    "vision-attentional-pool": (_arch(vision={"attentional_pool": True, "attn_pooler_heads": 2,
                                              "attn_pooler_queries": 4}), "image"),
    "text-qk-norm": (_arch(text={"qk_norm": True}), "text"),
    "text-no-causal-mask": (_arch(text={"no_causal_mask": True}), "text"),
    "text-last-pool": (_arch(text={"pool_type": "last"}), "text"),
}


@pytest.mark.parametrize("name", list(FALLBACKS))
def test_unsupported_towers_fall_back_to_open_clip(name: str) -> None:
    arch, tower = FALLBACKS[name]
    anchor = load_anchor(arch=arch)
    _assert_matches_open_clip(anchor, _images(anchor), _captions([1, 6, 20]))
    assert anchor.last_path[tower] == "open_clip"
    assert anchor.fallback_reason[tower]
    other = "text" if tower == "image" else "image"
    assert anchor.last_path[other] == "sdpa"


def test_fast_path_can_be_switched_off_and_a_changed_mask_is_noticed() -> None:
    anchor = load_anchor(arch=_arch(layers=1))
    images, ids = _images(anchor), _captions([4, 9])
    fast_image, fast_text = anchor.encode_image(images), anchor.encode_text(ids)
    anchor.use_fast_path = False
    try:
        torch.testing.assert_close(anchor.encode_image(images), fast_image, atol=TOLERANCE, rtol=0)
        torch.testing.assert_close(anchor.encode_text(ids), fast_text, atol=TOLERANCE, rtol=0)
        assert anchor.last_path == {"image": "open_clip", "text": "open_clip"}
    finally:
        anchor.use_fast_path = True
    saved = anchor.model.attn_mask
    try:
        anchor.model.attn_mask = torch.zeros_like(saved)  # bidirectional now: cutting would be wrong
        _assert_matches_open_clip(anchor, images, ids)
        assert anchor.last_path["text"] == "open_clip"
    finally:
        anchor.model.attn_mask = saved
