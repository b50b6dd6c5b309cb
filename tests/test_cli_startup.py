"""``bindcore`` starts fast: a command imports only what it uses, so ``--version``, ``--help`` and every built-in
command's ``--help`` import neither torch nor any other heavy library, nor any plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from bindcore.cli import BindcoreGroup, builtin_command_modules, cli

# Top-level packages that cost from a tenth of a second (pydantic, numpy) to seconds (torch, timm) to import.
HEAVY = ("torch", "torchvision", "timm", "open_clip", "numpy", "safetensors", "pydantic", "scipy", "PIL")

BUILTIN_COMMANDS = ("benchmark", "cache-anchor", "convert", "embed", "eval", "new-modality", "plugins", "search",
                    "train")

RUN_AND_LIST_MODULES = """
import json, sys
from bindcore.cli import cli
try:
    cli.main(sys.argv[2:], prog_name="bindcore")
except SystemExit as exit:
    code = exit.code
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def modules_imported_by(args: list[str], tmp_path: Path) -> set[str]:
    """Run ``bindcore ARGS`` in a fresh interpreter (installed plugins discoverable); the modules it imported."""
    report = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", RUN_AND_LIST_MODULES, str(report), *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(report.read_text())
    assert result["code"] in (0, None), done.stdout + done.stderr
    return set(result["modules"])


def heavy_or_plugin(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m.startswith("bind_"))


@pytest.mark.parametrize("args", [["--version"], ["--help"], *([name, "--help"] for name in BUILTIN_COMMANDS),
                                  ["convert", "imagebind", "--help"]], ids=" ".join)
def test_version_and_help_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    imported = modules_imported_by(args, tmp_path)
    assert heavy_or_plugin(imported) == []
    assert "bindcore.plugins" not in imported  # the plugin machinery is not even loaded


def test_version_and_help_import_only_the_commands_they_show(tmp_path: Path) -> None:
    assert not {m for m in modules_imported_by(["--version"], tmp_path) if m.startswith("bindcore.commands.")}
    assert {m for m in modules_imported_by(["train", "--help"], tmp_path)
            if m.startswith("bindcore.commands.")} == {"bindcore.commands.train"}


def test_import_bindcore_is_light() -> None:
    code = ("import sys, bindcore; heavy = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])); "
            "assert not heavy, heavy; assert 'bindcore.plugins' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_builtin_module_defines_the_command_named_after_it() -> None:
    modules = builtin_command_modules()
    assert set(BUILTIN_COMMANDS) <= set(modules)
    group = BindcoreGroup(name="bindcore")
    context = click.Context(group)
    for name in modules:
        assert group.get_command(context, name).name == name


def test_help_lists_builtins_and_points_at_plugin_commands() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1]
    assert all(f"  {name} " in listed for name in BUILTIN_COMMANDS)
    assert "bindcore plugins" in " ".join(listed.split())


def test_lazy_exports_resolve() -> None:
    import bindcore

    for name in bindcore.__all__:
        assert getattr(bindcore, name) is not None, name
    assert set(bindcore.__all__) <= set(dir(bindcore))
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        bindcore.nonexistent  # noqa: B018
