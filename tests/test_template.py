"""``bindcore new-modality``: name and kind validation, all-or-nothing rendering, and the generated plugin of
each kind installs, registers and passes its own test suite (conformance kit included)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import bindcore
from bindcore.commands import new_modality
from bindcore.commands.new_modality import (
    COMMON,
    KINDS,
    default_template_dir,
    placeholders,
    render_template,
    validate_name,
)
from bindcore.errors import ConfigError

RUFF = Path(sys.executable).with_name("ruff")
#: Words of the 2-D-map example (a pressure pad) that once leaked into every rendered plugin.
LEFTOVER_WORDS = re.compile(r"\b(pressure|pads?)\b", re.IGNORECASE)
#: A rendered model.py builds on the core's encoders: this many code lines (no comments, docstrings, blanks).
MAX_MODEL_CODE_LINES = 25


def code_lines(source: str) -> list[str]:
    """The lines of Python ``source`` that are code: not blank, not comments, not inside a docstring."""
    import ast

    docstring_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            first = node.body[0]
            docstring_lines.update(range(first.lineno, first.end_lineno + 1))
    return [line for number, line in enumerate(source.splitlines(), start=1)
            if line.strip() and not line.strip().startswith("#") and number not in docstring_lines]


def readme_python_block(readme: str, heading: str) -> str:
    """The first ```python block under ``## heading``."""
    section = readme.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"no python block under ## {heading}"
    return match.group(1)


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
    assert values["kind"] == "map" and values["base_class"] == "bindcore.patch_modality.PatchModality"
    assert placeholders("eeg", "signal")["base_class"] == "bindcore.signal_modality.SignalModality"


@pytest.mark.parametrize("kind", ["", "image", "../map", "common", "Map"])
def test_unknown_kinds_are_rejected_before_anything_is_written(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ConfigError, match="unknown template kind"):
        render_template("tactile", tmp_path, kind=kind)
    assert list(tmp_path.iterdir()) == []
    result = CliRunner().invoke(_cli(), ["new-modality", "tactile", "--kind", kind, "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "--kind" in result.output
    assert list(tmp_path.iterdir()) == []


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
    (template / "map" / "tests" / "zz_broken.py").write_text("x = '{{nmae}}'\n")  # a typo, rendered last
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=r"map/tests/zz_broken.py: unknown template placeholder \{\{nmae\}\}"):
        render_template("tactile", out, template=template)
    assert list(out.iterdir()) == []


def test_a_file_in_common_and_in_a_kind_is_a_template_error(tmp_path: Path) -> None:
    template = tmp_path / "template"
    shutil.copytree(default_template_dir(), template)
    shutil.copy(template / "map" / "bind_{{name}}" / "model.py", template / COMMON / "bind_{{name}}" / "model.py")
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=re.escape("both render to bind_tactile/model.py")):
        render_template("tactile", out, template=template)
    assert not out.exists()


def test_a_file_name_rendering_outside_the_plugin_is_refused(tmp_path: Path, monkeypatch) -> None:
    """Validated names cannot do it; the renderer still refuses, should a placeholder ever allow it."""
    real = new_modality.placeholders
    monkeypatch.setattr(new_modality, "placeholders",
                        lambda name, kind: {**real(name, kind), "name": "/../../escaped"})
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="outside the plugin"):
        render_template("tactile", out)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_a_template_without_the_kind_folder_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "template"
    shutil.copytree(default_template_dir() / COMMON, template / COMMON)
    with pytest.raises(ConfigError, match="signal not found"):
        render_template("eeg", tmp_path / "out", kind="signal", template=template)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("kind", "base"), [("map", "PatchModality"), ("signal", "SignalModality")])
def test_rendered_tree_is_complete_substituted_generic_and_lint_clean(tmp_path: Path, kind: str, base: str) -> None:
    result = CliRunner().invoke(_cli(), ["new-modality", "tactile", "--kind", kind, "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "bind-tactile"
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert files == {"pyproject.toml", "README.md", "bind_tactile/__init__.py", "bind_tactile/config.py",
                     "bind_tactile/model.py", "bind_tactile/preprocess.py", "bind_tactile/strategies.py",
                     "bind_tactile/toy.py", "tests/conftest.py", "tests/test_conformance.py",
                     "tests/test_preprocess.py", "tests/test_toy.py"}
    tiny_definitions = []
    for relative in sorted(files):
        text = (root / relative).read_text()
        assert "{{" not in text and "}}" not in text, relative
        assert not LEFTOVER_WORDS.search(text), (relative, LEFTOVER_WORDS.search(text))
        tiny_definitions += [relative for line in text.splitlines() if re.match(r"TINY\s*[:=]", line)]
    assert tiny_definitions == ["bind_tactile/config.py"]  # one tiny config, imported by every test
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.bindcore]\ntactile = "bind_tactile"' in pyproject
    assert 'name = "bind-tactile"' in pyproject
    model = (root / "bind_tactile" / "model.py").read_text()
    assert f"class TactileModality({base})" in model
    assert len(code_lines(model)) <= MAX_MODEL_CODE_LINES, "\n".join(code_lines(model))
    assert "ModalityConformance" in (root / "tests" / "test_conformance.py").read_text()
    readme = (root / "README.md").read_text()
    assert "## What `preprocess` may read" in readme and f"--kind {kind}" in readme
    assert "no file I/O" not in (root / "bind_tactile" / "preprocess.py").read_text()
    if RUFF.exists():
        lint = subprocess.run([str(RUFF), "check", "."], cwd=root, capture_output=True, text=True, timeout=120)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_code_lines_skips_comments_docstrings_and_blanks() -> None:
    source = '"""Module\ndocstring."""\n\nimport os  # why\n\n\nclass A:\n    """Doc."""\n\n    # note\n    x = 1\n'
    assert code_lines(source) == ["import os  # why", "class A:", "    x = 1"]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "name"), [("map", "tactile"), ("signal", "eeg")])
def test_generated_plugin_installs_registers_and_passes_its_tests(tmp_path: Path, kind: str, name: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    created = subprocess.run([sys.executable, "-m", "bindcore.cli", "new-modality", name, "--kind", kind,
                              "--dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert created.returncode == 0, created.stdout + created.stderr
    distribution = f"bind-{name}"
    plugin = tmp_path / distribution

    # install into a private site directory: the shared environment is never modified
    site = tmp_path / "site"
    # build with this environment's setuptools when it has one (offline-friendly); else pip fetches it
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation,
                              "--target", str(site), str(plugin)], capture_output=True, text=True, env=env, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # its discovery check needs only its own entry point: skip importing every other installed plugin
    env_own_plugin = {**env, "BINDCORE_LOAD_PLUGINS": distribution}

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsx", "-p", "no:cacheprovider", str(plugin)],
                           cwd=plugin, capture_output=True, text=True, timeout=600, env=env_own_plugin)
    summary = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else ""
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert "passed" in summary and "failed" not in summary and "error" not in summary, summary
    # the template passes every check that applies to a trainable modality
    assert "xfail" not in summary and "1 skipped" in summary, summary
    assert "so check_frozen_modality_has_no_trainable_parameters" in tests.stdout

    # the rendered README's snippet runs as written against the installed plugin
    snippet = readme_python_block((plugin / "README.md").read_text(), "Try it")
    ran = subprocess.run([sys.executable, "-c", snippet + "\nassert z.shape == (1, TINY['embed_dim'])\n"],
                         cwd=tmp_path, capture_output=True, text=True, env=env_own_plugin, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]

    listed = subprocess.run([sys.executable, "-m", "bindcore.cli", "plugins", "--json"], capture_output=True,
                            text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins[distribution]["modalities"] == [name]
    assert plugins[distribution]["error"] is None


def test_template_ships_inside_the_package():
    """new-modality reads the template from inside the bindcore package, so a wheel install has it too."""
    from pathlib import Path

    import bindcore
    from bindcore.commands.new_modality import default_template_dir

    template = default_template_dir()
    assert template.parent == Path(bindcore.__file__).resolve().parent
    assert (template / COMMON / "pyproject.toml").is_file()
    assert all((template / kind / "bind_{{name}}" / "model.py").is_file() for kind in KINDS)
