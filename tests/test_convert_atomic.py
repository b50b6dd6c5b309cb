"""`bindcore convert imagebind` writes nothing half-done: options are checked before anything is written, OUT is
written into a hidden sibling and renamed into place, and every file follows the user's umask."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

import bindcore
from bindcore.convert import convert_imagebind
from bindcore.errors import ConfigError, UnknownModalityError
from bindcore.testing.parity import parity_vectors_path

CHECKPOINT = parity_vectors_path() / "small_model" / "state_dict.pt"
PLUGIN_MODALITIES = ("audio", "depth", "thermal", "imu")


@pytest.fixture(autouse=True)
def _needs_checkpoint() -> None:
    if not CHECKPOINT.is_file():
        pytest.skip(f"ImageBind parity vectors not found at {CHECKPOINT.parent} (set BINDCORE_PARITY_DIR)")
    missing = [m for m in PLUGIN_MODALITIES if m not in bindcore.list_modalities()]
    if missing:
        pytest.skip(f"plugins not installed: {', '.join(missing)}")


def small_heads() -> dict[str, int]:
    kwargs = json.loads((CHECKPOINT.parent / "config.json").read_text())["kwargs"]
    return {m: kwargs[f"{m}_num_heads"] for m in ("vision", "text", *PLUGIN_MODALITIES)}


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash (``dir`` for directories)."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _hide_plugin(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    real = bindcore.modality_class

    def modality_class(name: str) -> type:
        if name == hidden:
            raise UnknownModalityError(f"unknown modality {name!r}")
        return real(name)

    monkeypatch.setattr(bindcore, "modality_class", modality_class)


@pytest.mark.parametrize("case", ["heads", "image_size", "plugin"])
def test_a_bad_option_for_a_later_modality_fails_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    out = tmp_path / "out"
    heads = small_heads()
    if case == "heads":  # imu is converted last; 7 does not divide its width 64
        options, expected = {"heads": {**heads, "imu": 7}}, r"--heads imu=7: .*width 64 is not divisible by 7"
    elif case == "image_size":
        options = {"heads": heads, "modalities": ["audio", "vision"], "image_size": 250}
        expected = r"--image-size 250: .*not a multiple of the patch size 14"
    else:
        _hide_plugin(monkeypatch, "imu")
        options, expected = {"heads": heads, "modalities": ["audio", "imu"]}, r"--modality imu: no installed plugin"
    with pytest.raises(ConfigError, match=expected):
        convert_imagebind(CHECKPOINT, out, **options)
    assert list(tmp_path.iterdir()) == []  # no OUT, no temporary sibling


def test_cli_names_the_bad_heads_option_and_leaves_nothing(tmp_path: Path) -> None:
    from bindcore.cli import cli

    heads = [arg for name, n in {**small_heads(), "depth": 5}.items() for arg in ("--heads", f"{name}={n}")]
    result = CliRunner().invoke(cli, ["convert", "imagebind", str(CHECKPOINT), str(tmp_path / "out"), *heads])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a ClickException, not a crash
    assert "--heads depth=5" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_failure_midway_leaves_an_existing_out_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    convert_imagebind(CHECKPOINT, out, heads=small_heads(), modalities=["imu"])
    before = snapshot(out)

    def broken(cls, state_dict, **config):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(bindcore.modality_class("depth"), "from_imagebind", classmethod(broken))
    with pytest.raises(RuntimeError, match="injected failure"):  # audio has been converted by then
        convert_imagebind(CHECKPOINT, out, heads=small_heads(), modalities=["audio", "depth", "imu"],
                          overwrite=True)
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_overwrite_replaces_out_as_a_whole_and_a_non_empty_out_is_refused_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run\n")
    with pytest.raises(ConfigError, match="not empty"):  # refused before even opening the checkpoint
        convert_imagebind(tmp_path / "missing.pth", out)
    report = convert_imagebind(CHECKPOINT, out, heads=small_heads(), modalities=["vision"], overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["anchor", "conversion.json", "vision"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    # Paths name the final OUT, never the temporary sibling the files were written in.
    assert report.written == {"anchor": out / "anchor", "vision": out / "vision"}
    assert json.loads((out / "conversion.json").read_text())["written"]["vision"] == str(out / "vision")
    vision = json.loads((out / "vision" / "bindcore.json").read_text())
    assert vision["config"]["anchor"]["model"] == f"local-dir:{out.resolve() / 'anchor'}"


def test_an_empty_existing_out_needs_no_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    convert_imagebind(CHECKPOINT, out, heads=small_heads(), modalities=["imu"])
    assert sorted(p.name for p in out.iterdir()) == ["conversion.json", "imu"]


@pytest.mark.parametrize(("mask", "dir_mode", "file_mode"), [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_every_written_folder_and_file_follows_the_umask(tmp_path: Path, mask: int, dir_mode: int,
                                                         file_mode: int) -> None:
    out = tmp_path / "out"
    with umask(mask):
        report = convert_imagebind(CHECKPOINT, out, heads=small_heads())
    assert {*PLUGIN_MODALITIES, "anchor", "vision", "text"} <= set(report.written)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    expected = {path: dir_mode if (tmp_path / path).is_dir() else file_mode for path in modes}
    assert modes == expected


def test_a_plugin_rejecting_its_entries_is_a_config_error_naming_the_modality(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def rejecting(cls, state_dict, **config):
        raise ValueError("patch size 15 does not tile the input")

    monkeypatch.setattr(bindcore.modality_class("depth"), "from_imagebind", classmethod(rejecting))
    with pytest.raises(ConfigError, match=r"^depth: cannot convert .*patch size 15"):
        convert_imagebind(CHECKPOINT, tmp_path / "out", heads=small_heads(), modalities=["imu", "depth"])
    assert list(tmp_path.iterdir()) == []
