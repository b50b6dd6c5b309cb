"""The anchor's two towers as registered modalities: discovery, a shared model, one embedding space."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

import bindcore
from bindcore.anchor import load_anchor, tiny_anchor_config
from bindcore.cli import cli

ARCH = tiny_anchor_config(embed_dim=16, image_size=16, patch_size=8, width=32, layers=1, heads=2)


def _require(*names: str) -> None:
    missing = [n for n in names if n not in bindcore.list_modalities()]
    if missing:
        pytest.skip(f"plugins for {missing} are not installed (pip install -e plugins/bind-vision plugins/bind-text)")


def test_plugins_json_lists_vision_and_text() -> None:
    _require("vision", "text")
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    by_name = {p["name"]: p for p in json.loads(result.output)}
    assert by_name["bind-vision"]["modalities"] == ["vision", "video"] and by_name["bind-vision"]["error"] is None
    assert by_name["bind-text"]["modalities"] == ["text"] and by_name["bind-text"]["error"] is None


def test_vision_and_text_share_one_anchor_and_one_space() -> None:
    _require("vision", "text")
    vision = bindcore.modality("vision", anchor={"arch": ARCH, "seed": 21})
    text = bindcore.modality("text", anchor={"arch": ARCH, "seed": 21})
    assert vision.anchor is text.anchor is load_anchor(arch=ARCH, seed=21)
    assert not vision.trainable and not text.trainable
    images = [vision.render_toy(s) for s in bindcore.toyworld.generate_scenes(4, seed=0)]
    z_image = vision.embed(images)
    z_text = text.embed(["a dog", "a car", "rain", "fire"])
    assert z_image.shape == z_text.shape == (4, 16)
    # Same numbers as open_clip's CLIP forward: the modalities are exactly the anchor's towers.
    logits = z_image @ z_text.T
    expected_image = torch.nn.functional.normalize(vision.anchor.model.encode_image(vision.preprocess(images)), dim=-1)
    expected_text = torch.nn.functional.normalize(vision.anchor.model.encode_text(
        text.preprocess(["a dog", "a car", "rain", "fire"])), dim=-1)
    torch.testing.assert_close(logits, expected_image @ expected_text.T, rtol=0, atol=1e-5)
