"""The llvip benchmark reader on a fixture tree in LLVIP's published layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bind_thermal import ThermalModality
from bind_thermal.benchmarks import LLVIP, LlvipOptions
from pydantic import ValidationError

from bindcore.errors import InputError


def test_llvip_crops_labels_and_name_lists(llvip_tree: Path, tiny_options):
    data = LLVIP.read(llvip_tree.parent, LlvipOptions())
    assert data.labels == [0, 1, 0, 1, 0]
    assert data.class_names == [["person", "man", "woman", "people"], ["street", "road", "car", "light", "tree"]]
    assert data.sources[0] == "infrared/test/190001.jpg person 0 (2,3,12,23)"
    assert [crop.shape for crop in data.items] == [(20, 10), (20, 10), (20, 8), (20, 8), (46, 62)]
    assert all(crop.dtype == np.uint8 for crop in data.items)
    assert [p.source for p in data.problems] == [
        "infrared/test/190003.jpg", "infrared/test/190002.jpg person 0 (1,1,63,47) background",
        "infrared/test/190004.jpg"]
    embedded = ThermalModality(**tiny_options).preprocess(data.items)  # raw inputs the preprocess accepts
    assert embedded.shape == (5, 1, 32, 32)
    assert LLVIP.paper == {"top1": 0.634}


def test_llvip_seed_option_moves_background_boxes(llvip_tree: Path):
    first = LLVIP.read(llvip_tree, LlvipOptions(seed=0)).sources
    assert LLVIP.read(llvip_tree, LlvipOptions(seed=3)).sources[1] != first[1]
    with pytest.raises(ValidationError):
        LlvipOptions(split="train")


def test_llvip_wrong_root(tmp_path: Path):
    with pytest.raises(InputError, match="infrared"):
        LLVIP.read(tmp_path, LlvipOptions())


def test_plugin_registers_llvip():
    import bind_thermal

    registered = []
    bind_thermal.register_benchmarks(registered.append)
    assert [(b.name, b.modality, b.task) for b in registered] == [("llvip", "thermal", "zero_shot")]
