"""The ``llvip`` data kind: a miniature LLVIP tree (the dataset's real layout, written by the conftest) read in
place through the recipe; visible images paired with their infrared twins by name; the thermal modality trains on
it; an infrared image without a visible twin is left out and listed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from bindcore.testing.stubs import tiny_plugin_recipe


def _recipe(tmp_path: Path, root: Path, split: str) -> Path:
    raw = tiny_plugin_recipe("thermal", {"image_size": 32, "patch_size": 8, "width": 16, "num_layers": 1,
                                         "num_heads": 2},
                             {"kind": "llvip", "root": str(root), "split": split}, image_size=32, batch_size=3)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_llvip_pairs_visible_and_infrared_by_name_and_trains(llvip_tree, tmp_path):
    from bindcore.plugins import get_registry
    from bindcore.recipe import load_recipe
    from bindcore.run_setup import RunSetup
    from bindcore.train.trainer import train

    recipe = load_recipe(_recipe(tmp_path, llvip_tree, "test"))
    module = get_registry().get("thermal")(recipe.modalities["thermal"].config)
    source = RunSetup(recipe, tmp_path / "run", prepare=False).source("thermal", module)
    assert len(source) == 3 and [u["where"] for u in source.unusable] == ["infrared/test/190003.jpg"]
    for index in range(3):
        item = source.load(index)
        assert Path(item["image"]).parent.name == "test" and Path(item["image"]).parent.parent.name == "visible"
        assert Path(item["thermal"]).name == Path(item["image"]).name  # the twin of the same name
        assert Path(item["thermal"]).parent.parent.name == "infrared"
    messages: list[str] = []
    result = train(recipe, tmp_path / "run", log=messages.append)
    assert result.steps == 1 and np.isfinite(result.final_losses["thermal"])
    assert any("data: thermal: 1 of 4 inputs left out" in m for m in messages)
    listed = [json.loads(line) for line in (tmp_path / "run" / "skipped.jsonl").read_text().splitlines()]
    assert [r["where"] for r in listed] == ["infrared/test/190003.jpg"]
