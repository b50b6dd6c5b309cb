"""The ESC-50 reader on a tiny tree in the dataset's published layout (``ESC-50-master/meta/esc50.csv``,
``ESC-50-master/audio/*.wav``), written here."""

from __future__ import annotations

from pathlib import Path

import bind_audio
import numpy as np
import pytest
from bind_audio.benchmarks import ESC50, read_esc50, write_esc50_layout

from bindcore.errors import InputError
from bindcore.eval.benchmarks.registry import collect_benchmarks
from bindcore.eval.benchmarks.spec import NoOptions
from bindcore.plugins import Registry

CATEGORIES = ["dog", "crying baby", "church bells"]


def esc50_tree(root: Path) -> Path:
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal((1, 8000)).astype(np.float32), 16000) for _ in range(6)]
    return write_esc50_layout(root / "ESC-50-master", clips, targets=[0, 1, 2, 0, 1, 2], categories=CATEGORIES,
                              folds=[1, 1, 2, 3, 4, 5])


def test_the_published_layout_is_read_in_file_order(tmp_path):
    root = esc50_tree(tmp_path)
    header = (root / "meta" / "esc50.csv").read_text().splitlines()[0]
    assert header == "filename,fold,target,category,esc10,src_file,take"  # the real file's columns
    assert "crying_baby" in (root / "meta" / "esc50.csv").read_text()
    data = read_esc50(root, NoOptions())
    assert data.class_names == [["dog"], ["crying baby"], ["church bells"]]  # category with _ read as a space
    assert data.labels == [0, 1, 2, 0, 1, 2] and data.folds == [1, 1, 2, 3, 4, 5]
    assert all(Path(item).parent == root / "audio" and Path(item).is_file() for item in data.items)
    assert data.sources[0].startswith("meta/esc50.csv line 2: audio/1-")
    assert data.problems == [] and data.templates is None  # the CLIP ImageNet templates


def test_a_missing_clip_is_listed_not_dropped(tmp_path):
    root = esc50_tree(tmp_path)
    gone = sorted((root / "audio").iterdir())[0]
    gone.unlink()
    data = read_esc50(root, NoOptions())
    assert len(data.items) == 5
    (problem,) = data.problems
    assert gone.name in problem.source and problem.reason == "file not found"


def test_wrong_roots_name_the_fix(tmp_path):
    esc50_tree(tmp_path)
    with pytest.raises(InputError, match=r"ROOT seems to be its parent: pass .*ESC-50-master"):
        read_esc50(tmp_path, NoOptions())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="unpacked ESC-50-master folder"):
        read_esc50(empty, NoOptions())
    meta = tmp_path / "ESC-50-master" / "meta" / "esc50.csv"
    meta.write_text("file,fold,category\nx.wav,1,dog\n")
    with pytest.raises(InputError, match="lacks the column"):
        read_esc50(tmp_path / "ESC-50-master", NoOptions())


def test_the_plugin_registers_esc50_with_the_papers_figure():
    plugins = Registry(load_entry_points=False)
    plugins.add_plugin(bind_audio, name="bind-audio", version="0")
    benchmarks = collect_benchmarks(plugins)
    assert benchmarks.get("esc50") is ESC50 and benchmarks.owners["esc50"] == "bind-audio"
    assert ESC50.paper == {"top1": 0.669} and ESC50.modality == "audio" and ESC50.task == "zero_shot"
