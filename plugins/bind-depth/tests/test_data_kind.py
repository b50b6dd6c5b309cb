"""The ``sunrgbd`` data kind: a miniature SUN RGB-D tree (the dataset's real layout, written by the conftest) read
in place through the recipe; depth becomes disparity with each frame's focal length; the depth modality trains on
it; listed frames missing on disk are left out and listed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from bindcore.errors import ConfigError
from bindcore.testing.stubs import tiny_plugin_recipe

MISSING = "allsplit.mat alltest[1]: /n/fs/sun3d/data/SUNRGBD/kv1/b3dodata/img_0063"  # listed, not on disk


def _recipe(tmp_path: Path, root: Path, **data) -> Path:
    raw = tiny_plugin_recipe("depth", {"image_size": 32, "patch_size": 8, "width": 16, "num_layers": 1,
                                       "num_heads": 2},
                             {"kind": "sunrgbd", "root": str(root), **data}, image_size=32, epochs=2)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_sunrgbd_pairs_give_disparity_with_each_frames_focal_length(sunrgbd_tree, tmp_path):
    from bind_depth import DepthInput

    from bindcore.plugins import get_registry
    from bindcore.recipe import load_recipe
    from bindcore.run_setup import RunSetup

    recipe = load_recipe(_recipe(tmp_path, sunrgbd_tree, split="test"))
    setup = RunSetup(recipe, tmp_path / "run", prepare=False)
    module = get_registry().get("depth")(recipe.modalities["depth"].config)
    source = setup.source("depth", module)
    assert len(source) == 3 and source.inputs_total == 4  # one listed test frame is missing on disk
    assert [u["where"] for u in source.unusable] == [MISSING]
    item = source.load(1)
    assert item["image"].endswith(".jpg") and isinstance(item["depth"], DepthInput)
    assert item["depth"].focal_length == pytest.approx(518.857901) and item["depth"].baseline == 0.075
    assert "kv1/NYUdata/NYU0001" in source.describe(1)
    assert source.label(1) == 1  # bedroom among the 19 scene classes
    batch = module.preprocess([source.load(i)["depth"] for i in range(3)])
    assert batch.shape[0] == 3 and np.isfinite(batch.numpy()).all()


def test_the_depth_modality_trains_on_a_sunrgbd_tree(sunrgbd_tree, tmp_path):
    from bindcore.recipe import load_recipe
    from bindcore.train.trainer import train

    messages: list[str] = []
    result = train(load_recipe(_recipe(tmp_path, sunrgbd_tree, split="test")), tmp_path / "run",
                   log=messages.append)
    assert result.steps == 2 and np.isfinite(result.final_losses["depth"])
    assert any("data: depth: 1 of 4 inputs left out" in m for m in messages)
    listed = [json.loads(line) for line in (tmp_path / "run" / "skipped.jsonl").read_text().splitlines()]
    assert [r["where"] for r in listed] == [MISSING]


def test_unknown_kinds_and_options_are_named(sunrgbd_tree, tmp_path):
    from bindcore.recipe import load_recipe

    with pytest.raises(ConfigError, match=r"unknown data kind 'sunrgdb'; installed: toy, manifest, webdataset, "
                                          r"video, .*sunrgbd \(bind-depth\)"):
        load_recipe(_recipe(tmp_path, sunrgbd_tree, kind="sunrgdb"))
    with pytest.raises(ConfigError, match=r"unknown option\(s\) depth_folder of kind sunrgbd"):
        load_recipe(_recipe(tmp_path, sunrgbd_tree, options={"depth_folder": "depth"}))
