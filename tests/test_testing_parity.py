"""The kit's parity-vector locator: environment variable first, a clear skip when vectors are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

import bindcore.testing
from bindcore.testing.parity import PARITY_DIR_ENV


def test_the_environment_variable_names_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "small_model").mkdir()
    (tmp_path / "small_model" / "state_dict.pt").write_bytes(b"")
    monkeypatch.setenv(PARITY_DIR_ENV, str(tmp_path))
    assert bindcore.testing.parity_vectors_path() == tmp_path
    assert bindcore.testing.parity_dir("small_model/state_dict.pt") == tmp_path


def test_default_is_the_shared_folder_beside_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PARITY_DIR_ENV, raising=False)
    repo_root = Path(bindcore.__file__).resolve().parents[1]
    assert bindcore.testing.parity_vectors_path() == repo_root.parent / "shared" / "imagebind_vectors"


def test_absent_vectors_skip_with_the_path_and_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PARITY_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(pytest.skip.Exception, match=f"nowhere.*{PARITY_DIR_ENV}"):
        bindcore.testing.parity_dir()
    monkeypatch.setenv(PARITY_DIR_ENV, str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match=r"missing small_model/state_dict\.pt"):
        bindcore.testing.parity_dir("small_model/state_dict.pt")


def test_the_fixture_gives_the_directory(parity_dir: Path) -> None:
    assert parity_dir == bindcore.testing.parity_vectors_path() and parity_dir.is_dir()
