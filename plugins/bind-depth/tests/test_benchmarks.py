"""The sunrgbd and nyud benchmark readers on fixture trees in the datasets' published layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bind_depth import DepthInput
from bind_depth.benchmarks import NYUD, SUNRGBD, NyuOptions, SunRgbdOptions
from bind_depth.datasets.sunrgbd import SCENE_CLASSES
from pydantic import ValidationError
from scipy.io import savemat

from bindcore.errors import InputError

KV2 = "kv2/kinect2data/000002_2014-05-26_14-23-37_260595134347_rgbf000103-resize"
REALSENSE = "realsense/lg/2014_10_24-13_32_52-1311000073"


def test_sunrgbd_reads_the_test_split_of_the_19_classes(sunrgbd_tree: Path, sunrgbd_frame_writer):
    sunrgbd_frame_writer(sunrgbd_tree / "SUNRGBD", "kv1/b3dodata/img_0063", "idk", np.full((4, 4), 900))
    data = SUNRGBD.read(sunrgbd_tree, SunRgbdOptions())
    assert data.sources == [KV2, "kv1/NYUdata/NYU0001", REALSENSE]  # img_0063's scene is not a class
    assert data.labels == [SCENE_CLASSES.index("office"), SCENE_CLASSES.index("bedroom"),
                           SCENE_CLASSES.index("study_space")]
    assert len(data.class_names) == 19 and data.class_names[3] == ["computer room"]
    assert all(isinstance(item, DepthInput) and item.encoding == "sunrgbd" for item in data.items)
    assert [(item.focal_length, item.baseline) for item in data.items] == [(529.5, 0.075), (518.857901, 0.075),
                                                                           (570.3, 0.095)]
    assert data.problems == []  # the missing frame exists now
    assert SUNRGBD.paper == {"top1": 0.351}


def test_sunrgbd_missing_frame_is_a_problem_and_raw_depth_option(sunrgbd_tree: Path):
    data = SUNRGBD.read(sunrgbd_tree, SunRgbdOptions(raw_depth=True))
    assert [p.source for p in data.problems] == [
        "allsplit.mat alltest[1]: /n/fs/sun3d/data/SUNRGBD/kv1/b3dodata/img_0063"]
    assert data.items[2].data.parent.name == "depth"
    assert data.items[0].data.parent.name == "depth_bfx"  # no raw depth/ in that frame: the in-filled one


def test_sunrgbd_wrong_root_and_options(tmp_path: Path):
    with pytest.raises(InputError, match="SUNRGBD"):
        SUNRGBD.read(tmp_path, SunRgbdOptions())
    with pytest.raises(ValidationError):
        SunRgbdOptions(test_list="x")


@pytest.fixture
def nyu_tree(tmp_path: Path, sunrgbd_frame_writer) -> Path:
    dataset = tmp_path / "SUNRGBD"
    for frame, scene, metres in ((1, "bedroom", 2.0), (2, "cafe", 3.0), (3, "excercise_room", 1.5),
                                 (4, "study_space", 2.0), (7, "office", 2.0)):
        sunrgbd_frame_writer(dataset, f"kv1/NYUdata/NYU{frame:04d}", scene, np.full((6, 8), metres * 1000),
                             focal_length=518.857901)
    savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[7.0]]),
                                      "testNdxs": np.array([[1.0], [2.0], [3.0], [5.0], [4.0]])})
    return tmp_path


def test_nyud_ten_classes_with_other_and_problems(nyu_tree: Path):
    data = NYUD.read(nyu_tree, NyuOptions())
    assert len(data.class_names) == 10
    assert data.class_names[:9] == [["bathroom"], ["bedroom"], ["bookstore"], ["classroom"], ["dining room"],
                                    ["home office"], ["kitchen"], ["living room"], ["office"]]
    other = data.class_names[9]
    assert len(other) == 18 and "exercise room" in other and "cafe" in other and "office" not in other
    assert data.sources == ["kv1/NYUdata/NYU0001", "kv1/NYUdata/NYU0002", "kv1/NYUdata/NYU0003"]
    assert data.labels == [1, 9, 9]
    assert [p.source for p in data.problems] == ["splits.mat testNdxs[3]: kv1/NYUdata/NYU0005",
                                                 "splits.mat testNdxs[4]: kv1/NYUdata/NYU0004"]
    assert "scene folder missing" in data.problems[0].reason
    assert "not one of NYU Depth v2's 27 scene types" in data.problems[1].reason
    assert all(item.focal_length == 518.857901 and item.baseline == 0.075 for item in data.items)


def test_nyud_missing_splits_file_is_named(nyu_tree: Path, tmp_path: Path):
    (nyu_tree / "splits.mat").rename(tmp_path / "elsewhere.mat")
    with pytest.raises(InputError, match=r"splits\.mat"):
        NYUD.read(nyu_tree, NyuOptions())
    assert len(NYUD.read(nyu_tree, NyuOptions(splits=tmp_path / "elsewhere.mat")).items) == 3


def test_plugin_registers_both_benchmarks():
    import bind_depth

    registered = []
    bind_depth.register_benchmarks(registered.append)
    assert [b.name for b in registered] == ["sunrgbd", "nyud"]
    assert all(b.modality == "depth" for b in registered)
