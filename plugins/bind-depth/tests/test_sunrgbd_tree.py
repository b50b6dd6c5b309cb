"""The SUN RGB-D tree reader: split file order, per-sensor cameras, problems for listed-but-missing frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bind_depth import DepthModality
from bind_depth.datasets import sunrgbd

from bindcore.errors import InputError

KV2 = "kv2/kinect2data/000002_2014-05-26_14-23-37_260595134347_rgbf000103-resize"
REALSENSE = "realsense/lg/2014_10_24-13_32_52-1311000073"
XTION = "xtion/sun3ddata/mit_32_d507/d507_2/0000051-000001713"


def test_test_split_in_file_order_with_cameras_and_problems(sunrgbd_tree: Path):
    found = sunrgbd.scan(sunrgbd_tree, "test")
    assert [r.name for r in found.records] == [KV2, "kv1/NYUdata/NYU0001", REALSENSE]
    assert [r.scene for r in found.records] == ["office", "bedroom", "study_space"]
    assert [r.sensor for r in found.records] == ["kv2", "kv1", "realsense"]
    assert [r.focal_length for r in found.records] == [529.5, 518.857901, 570.3]
    assert [r.baseline for r in found.records] == [0.075, 0.075, 0.095]
    assert found.records[1].depth == sunrgbd_tree / "SUNRGBD/kv1/NYUdata/NYU0001/depth_bfx/NYU0001.png"
    assert found.records[2].depth.parent.name == "depth"  # no depth_bfx/ there: the raw depth
    assert found.records[1].rgb.name == "NYU0001.jpg"
    assert len(found.problems) == 1
    assert found.problems[0].source == "allsplit.mat alltest[1]: /n/fs/sun3d/data/SUNRGBD/kv1/b3dodata/img_0063"
    assert "scene folder missing" in found.problems[0].reason
    assert [r.name for r in sunrgbd.scan(sunrgbd_tree, "train").records] == [XTION]


def test_all_walks_every_scene_folder_at_any_depth(sunrgbd_tree: Path):
    found = sunrgbd.scan(sunrgbd_tree / "SUNRGBD", "all")  # ROOT may be SUNRGBD/ itself
    assert [r.name for r in found.records] == ["kv1/NYUdata/NYU0001", KV2, REALSENSE, XTION]
    assert found.problems == []


def test_depth_input_gives_each_sensor_its_disparity(sunrgbd_tree: Path, tiny_options):
    records = sunrgbd.scan(sunrgbd_tree, "test").records
    raw = DepthModality(**tiny_options, infill="none", normalization="none")
    disparity = raw.preprocess([r.depth_input() for r in records])
    # fx * baseline / depth in metres: kv2 frame is 4 m, the others 2 m
    expected = [529.5 * 0.075 / 4.0, 518.857901 * 0.075 / 2.0, 570.3 * 0.095 / 2.0]
    np.testing.assert_allclose(disparity.mean(dim=(1, 2, 3)).numpy(), expected, rtol=1e-5)


def test_broken_frames_become_problems(sunrgbd_tree: Path):
    dataset = sunrgbd_tree / "SUNRGBD"
    (dataset / KV2 / "intrinsics.txt").write_text("1 2 3\n")
    (dataset / "kv1/NYUdata/NYU0001/scene.txt").unlink()
    for png in (dataset / REALSENSE / "depth").iterdir():
        png.unlink()
    found = sunrgbd.scan(sunrgbd_tree, "test")
    assert found.records == []
    reasons = [p.reason for p in found.problems]
    assert "3x3 matrix" in reasons[0] and "scene.txt missing" in reasons[2] and "no depth PNG" in reasons[3]


def test_text_split_list(sunrgbd_tree: Path, tmp_path: Path):
    listing = tmp_path / "my_test.txt"
    listing.write_text(f"# my split\n{XTION}\n\n/data/SUNRGBD/kv1/NYUdata/NYU0001/\n")
    found = sunrgbd.scan(sunrgbd_tree, "test", split_file=listing)
    assert [r.name for r in found.records] == [XTION, "kv1/NYUdata/NYU0001"]


def test_wrong_root_and_missing_split_file_name_the_file(tmp_path: Path, sunrgbd_frame_writer):
    with pytest.raises(InputError, match="SUNRGBD/"):
        sunrgbd.scan(tmp_path, "test")
    sunrgbd_frame_writer(tmp_path / "SUNRGBD", "kv1/NYUdata/NYU0001", "bedroom", np.ones((4, 4)))
    with pytest.raises(InputError, match=r"allsplit\.mat"):
        sunrgbd.scan(tmp_path, "test")


def test_relative_scene_name():
    assert sunrgbd.relative_scene_name("/n/fs/sun3d/data/SUNRGBD/kv1/NYUdata/NYU0001") == "kv1/NYUdata/NYU0001"
    assert sunrgbd.relative_scene_name("SUNRGBD/kv2/a/b/") == "kv2/a/b"
    assert sunrgbd.relative_scene_name("kv2/a") == "kv2/a"
