"""``bindcore new-modality``: name validation, all-or-nothing rendering, and the generated plugin installs,
registers and passes its own test suite (conformance kit included)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import bindcore
from bindcore.commands import new_modality
from bindcore.commands.new_modality import default_template_dir, placeholders, render_template, validate_name
from bindcore.errors import ConfigError

RUFF = Path(sys.executable).with_name("ruff")


def _cli() -> click.Group:
    group = click.Group()
    new_modality.register(group)
    return group


@pytest.mark.parametrize("name", ["", "Tactile", "9axis", "tac-tile", "tac__tile", "tactile_", "class", "bind_x",
                                  "a" * 41, "tac tile", "../evil"])
def test_bad_names_are_rejected_before_anything_is_written(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="invalid modality name"):
        render_template(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["tactile", "event_camera", "lidar2"])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


def test_placeholders_for_a_two_word_name() -> None:
    values = placeholders("event_camera")
    assert values["Name"] == "EventCamera"
    assert values["package"] == "bind_event_camera"
    assert values["distribution"] == "bind-event-camera"


def test_cli_reports_bad_name_and_existing_directory(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(_cli(), ["new-modality", "Bad-Name", "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "invalid modality name" in result.output

    (tmp_path / "bind-tactile").mkdir()
    (tmp_path / "bind-tactile" / "mine.txt").write_text("keep me")
    result = runner.invoke(_cli(), ["new-modality", "tactile", "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "bind-tactile").iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bind-tactile"]  # no staging directory left


def test_cli_warns_when_the_name_is_already_installed(tmp_path: Path, bindcore_registry) -> None:
    from bindcore.testing import ReferenceModality

    class ProvidesReference:
        @bindcore.hookimpl
        def register_modalities(self, register) -> None:
            register(ReferenceModality)

    bindcore_registry.add_plugin(ProvidesReference(), name="bind-reference")
    result = CliRunner().invoke(_cli(), ["new-modality", "reference", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "already provided by bind-reference" in result.output
    assert (tmp_path / "bind-reference" / "bind_reference" / "model.py").is_file()


def test_a_failing_render_leaves_nothing_behind(tmp_path: Path) -> None:
    template = tmp_path / "template"
    shutil.copytree(default_template_dir(), template)
    (template / "tests" / "zz_broken.py").write_text("x = '{{nmae}}'\n")  # a typo'd placeholder, rendered last
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"unknown template placeholder \{\{nmae\}\}"):
        render_template("tactile", out, template=template)
    assert list(out.iterdir()) == []


def test_rendered_tree_is_complete_substituted_and_lint_clean(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(), ["new-modality", "tactile", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "bind-tactile"
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert {"pyproject.toml", "README.md", "bind_tactile/__init__.py", "bind_tactile/config.py",
            "bind_tactile/model.py", "bind_tactile/toy.py", "tests/test_conformance.py"} <= files
    for path in root.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text() and "}}" not in path.read_text(), path
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.bindcore]\ntactile = "bind_tactile"' in pyproject
    assert 'name = "bind-tactile"' in pyproject
    assert "class TactileModality(Modality)" in (root / "bind_tactile" / "model.py").read_text()
    assert "ModalityConformance" in (root / "tests" / "test_conformance.py").read_text()
    if RUFF.exists():
        lint = subprocess.run([str(RUFF), "check", "."], cwd=root, capture_output=True, text=True, timeout=120)
        assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.slow
def test_generated_plugin_installs_registers_and_passes_its_tests(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    created = subprocess.run([sys.executable, "-m", "bindcore.cli", "new-modality", "tactile", "--dir", str(tmp_path)],
                             capture_output=True, text=True, env=env, timeout=120)
    assert created.returncode == 0, created.stdout + created.stderr
    plugin = tmp_path / "bind-tactile"

    # install into a private site directory: the shared environment is never modified
    site = tmp_path / "site"
    # build with this environment's setuptools when it has one (offline-friendly); else pip fetches it
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation,
                              "--target", str(site), str(plugin)], capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)

    # its discovery check needs only its own entry point: skip importing every other installed plugin
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsx", "-p", "no:cacheprovider", str(plugin)],
                           cwd=plugin, capture_output=True, text=True, timeout=400,
                           env={**env, "BINDCORE_LOAD_PLUGINS": "bind-tactile"})
    summary = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else ""
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert "passed" in summary and "failed" not in summary and "error" not in summary, summary
    # the template passes every check that applies to a trainable modality
    assert "xfail" not in summary and "1 skipped" in summary, summary
    assert "so check_frozen_modality_has_no_trainable_parameters" in tests.stdout

    listed = subprocess.run([sys.executable, "-m", "bindcore.cli", "plugins", "--json"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["bind-tactile"]["modalities"] == ["tactile"]
    assert plugins["bind-tactile"]["error"] is None


def test_template_ships_inside_the_package():
    """new-modality reads the template from inside the bindcore package, so a wheel install has it too."""
    from pathlib import Path

    import bindcore
    from bindcore.commands.new_modality import default_template_dir

    template = default_template_dir()
    assert template.parent == Path(bindcore.__file__).resolve().parent
    assert (template / "pyproject.toml").is_file() and (template / "bind_{{name}}" / "model.py").is_file()
