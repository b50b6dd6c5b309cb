"""The LLVIP tree reader: pairs, VOC boxes, person and background crops, problems for what is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bind_thermal.datasets import llvip

from bindcore.errors import InputError
from bindcore.imageio import read_gray_image


def test_pairs_of_a_split(llvip_tree: Path):
    found = llvip.pairs(llvip_tree, "test")
    assert [p.name for p in found.pairs] == ["190001", "190002", "190004"]
    assert found.pairs[0].infrared == llvip_tree / "infrared/test/190001.jpg"
    assert found.pairs[0].visible == llvip_tree / "visible/test/190001.jpg"
    assert found.pairs[0].annotation == llvip_tree / "Annotations/190001.xml"
    assert found.pairs[2].annotation is None
    assert [(p.source, p.reason) for p in found.problems] == [("infrared/test/190003.jpg",
                                                                "no visible/test/190003.* twin")]
    assert [p.name for p in llvip.pairs(llvip_tree.parent, "train").pairs] == ["010001"]  # the folder above


def test_person_and_background_crops(llvip_tree: Path):
    found = llvip.person_and_background_crops(llvip_tree, "test", seed=0)
    assert found.labels == [0, 1, 0, 1, 0]
    image = read_gray_image(llvip_tree / "infrared/test/190001.jpg")
    np.testing.assert_array_equal(found.crops[0], image[3:23, 2:12])
    np.testing.assert_array_equal(found.crops[2], image[10:30, 40:48])
    persons = [llvip.Box(2, 3, 12, 23), llvip.Box(40, 10, 48, 30)]
    for source, crop, person in ((found.sources[1], found.crops[1], persons[0]),
                                 (found.sources[3], found.crops[3], persons[1])):
        x0, y0, x1, y1 = (int(v) for v in source.rsplit("(", 1)[1].rstrip(")").split(","))
        background = llvip.Box(x0, y0, x1, y1)
        assert (background.width, background.height) == (person.width, person.height)
        assert not any(background.overlaps(p) for p in persons)
        np.testing.assert_array_equal(crop, image[y0:y1, x0:x1])
    assert found.sources[4] == "infrared/test/190002.jpg person 0 (1,1,63,47)"
    assert [p.source for p in found.problems] == [
        "infrared/test/190003.jpg", "infrared/test/190002.jpg person 0 (1,1,63,47) background",
        "infrared/test/190004.jpg"]
    assert "Annotations/190004.xml missing" in found.problems[2].reason
    again = llvip.person_and_background_crops(llvip_tree, "test", seed=0)
    assert again.sources == found.sources  # seeded
    other = llvip.person_and_background_crops(llvip_tree, "test", seed=1)
    assert other.sources[0] == found.sources[0] and other.sources[1] != found.sources[1]


def test_read_boxes_keeps_the_named_objects(tmp_path: Path, voc_writer):
    path = tmp_path / "a.xml"
    voc_writer(path, "a.jpg", 10, 10, [("person", 1, 2, 3, 4), ("car", 0, 0, 5, 5)])
    assert llvip.read_boxes(path) == [llvip.Box(1, 2, 3, 4)]
    path.write_text("<annotation><object>")
    with pytest.raises(InputError, match="VOC"):
        llvip.read_boxes(path)


def test_wrong_root_names_the_layout(tmp_path: Path):
    with pytest.raises(InputError, match="infrared"):
        llvip.pairs(tmp_path, "test")
    (tmp_path / "infrared/test").mkdir(parents=True)
    with pytest.raises(InputError, match="visible"):
        llvip.pairs(tmp_path, "test")
