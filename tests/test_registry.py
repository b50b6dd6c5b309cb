"""The plugin registry: strict duplicate/unknown errors, fault isolation, and `bindcore plugins`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydantic import Field

import bindcore
from bindcore import ModalityConfig, hookimpl
from bindcore.errors import ConfigError, DuplicateModalityError, UnknownModalityError
from bindcore.plugins import Registry, set_registry


class EchoConfig(ModalityConfig):
    width: int = Field(8, gt=0)
    scale: float = 1.0


def make_modality(modality_name: str) -> type[bindcore.Modality]:
    class Echo(bindcore.Modality):
        name = modality_name
        Config = EchoConfig

    return Echo


class Provides:
    """A plugin object registering the given modality classes."""

    def __init__(self, *classes: type) -> None:
        self.classes = classes

    @hookimpl
    def register_modalities(self, register):
        for cls in self.classes:
            register(cls)


class Raises:
    @hookimpl
    def register_modalities(self, register):
        raise RuntimeError("boom")


class MisspelledHook:
    @hookimpl
    def register_modalites(self, register):  # typo on purpose
        pass


@pytest.fixture
def registry():
    reg = Registry(load_entry_points=False)
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def test_lists_sorted_names_and_credits_distribution(registry):
    registry.add_plugin(Provides(make_modality("zeta"), make_modality("alpha")), name="bind-multi", version="1.2")
    assert bindcore.list_modalities() == ["alpha", "zeta"]
    assert registry.provider("zeta") == "bind-multi"
    [info] = registry.plugins()
    assert info.as_dict() == {"name": "bind-multi", "version": "1.2", "modalities": ["zeta", "alpha"], "commands": [],
                              "error": None}


def test_duplicate_names_both_distributions(registry):
    registry.add_plugin(Provides(make_modality("tactile")), name="bind-tactile", version="0.1")
    registry.add_plugin(Provides(make_modality("tactile")), name="acme-touch", version="2.0")
    with pytest.raises(DuplicateModalityError) as excinfo:
        bindcore.modality("tactile")
    message = str(excinfo.value)
    assert "bind-tactile 0.1" in message and "acme-touch 2.0" in message
    assert all(p.error and "tactile" in p.error for p in registry.plugins())


def test_unknown_name_suggests_close_match_and_install(registry):
    registry.add_plugin(Provides(make_modality("audio")), name="bind-audio")
    with pytest.raises(UnknownModalityError) as excinfo:
        bindcore.modality("audoi")
    message = str(excinfo.value)
    assert "'audio'" in message and "pip install bind-audoi" in message
    assert isinstance(excinfo.value, KeyError)


def test_failing_plugin_is_recorded_and_others_still_load(registry):
    registry.add_plugin(Raises(), name="bind-broken")
    registry.add_plugin(Provides(make_modality("depth")), name="bind-depth")
    assert bindcore.list_modalities() == ["depth"]
    broken = {p.name: p for p in registry.plugins()}["bind-broken"]
    assert "boom" in broken.error
    with pytest.raises(UnknownModalityError, match="bind-broken"):
        bindcore.modality("thermal")


def test_misspelled_hook_is_reported_not_ignored(registry):
    info = registry.add_plugin(MisspelledHook(), name="bind-typo")
    assert info.error and "register_modalites" in info.error


def test_config_typo_names_key_and_valid_keys(registry):
    registry.add_plugin(Provides(make_modality("echo")), name="bind-echo")
    assert bindcore.modality("echo", width=4).config.width == 4
    with pytest.raises(ConfigError) as excinfo:
        bindcore.modality("echo", widht=4)
    message = str(excinfo.value)
    assert "widht" in message and "did you mean width" in message and "scale" in message
    with pytest.raises(ConfigError, match="width"):
        bindcore.modality("echo", width=-1)


def test_plugins_command_json_and_table(registry):
    from bindcore.cli import cli

    registry.add_plugin(Provides(make_modality("echo")), name="bind-echo", version="0.3")
    registry.add_plugin(Raises(), name="bind-broken")
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["bind-echo"]["modalities"] == ["echo"] and rows["bind-echo"]["error"] is None
    assert rows["bind-echo"]["version"] == "0.3"
    assert "boom" in rows["bind-broken"]["error"]
    table = CliRunner().invoke(cli, ["plugins"]).output
    assert "bind-echo" in table and "0.3" in table and "boom" in table


def test_installed_entry_points_load_in_a_fresh_process():
    """Whatever is installed, `bindcore plugins --json` runs and every row has the documented keys."""
    out = subprocess.run([sys.executable, "-m", "bindcore.cli", "plugins", "--json"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    for row in json.loads(out):
        assert {"name", "version", "modalities", "error"} <= row.keys()


def test_factory_is_not_shadowed_by_a_submodule():
    """``bindcore.modality`` is the factory even after every core submodule has been imported."""
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(bindcore.__path__, "bindcore."):
        if not info.name.startswith("bindcore.testing.pytest_plugin"):
            importlib.import_module(info.name)
    assert bindcore.modality is bindcore.plugins.modality and callable(bindcore.modality)


# -- plugin isolation: a plugin's failure is recorded against it, never fatal to the CLI or the registry ---------
class RaisesInCommands:
    """Registers a modality, then fails while adding its commands."""

    @hookimpl
    def register_modalities(self, register):
        register(make_modality("tactile"))

    @hookimpl
    def register_commands(self, cli):
        raise RuntimeError("no commands today")


class AddsHello:
    @hookimpl
    def register_commands(self, cli):
        @cli.command("hello")
        def hello() -> None:
            """Say hello."""
            click.echo("hello from a plugin")


class ExitsInCommands:
    @hookimpl
    def register_commands(self, cli):
        sys.exit(4)


class ShadowsTrain:
    @hookimpl
    def register_commands(self, cli):
        @cli.command("train")
        def train() -> None:
            click.echo("not the real train")


def test_raising_register_commands_is_recorded_and_other_commands_work(registry):
    from bindcore.cli import cli

    registry.add_plugin(RaisesInCommands(), name="bind-badcmd", version="0.1")
    registry.add_plugin(ExitsInCommands(), name="bind-exitcmd", version="0.1")
    registry.add_plugin(AddsHello(), name="bind-hello", version="0.2")
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert "register_commands failed" in rows["bind-badcmd"]["error"]
    assert "no commands today" in rows["bind-badcmd"]["error"]
    assert rows["bind-badcmd"]["modalities"] == ["tactile"]  # its modality still works
    assert "sys.exit(4)" in rows["bind-exitcmd"]["error"]
    assert rows["bind-hello"]["commands"] == ["hello"] and rows["bind-hello"]["error"] is None
    assert bindcore.list_modalities() == ["tactile"]
    assert CliRunner().invoke(cli, ["--help"]).exit_code == 0
    hello = CliRunner().invoke(cli, ["hello"])
    assert hello.exit_code == 0 and "hello from a plugin" in hello.output
    table = CliRunner().invoke(cli, ["plugins"])
    assert table.exit_code == 0 and "no commands today" in table.output and "hello" in table.output


def test_plugin_cannot_replace_a_built_in_command(registry):
    from bindcore.cli import cli

    registry.add_plugin(ShadowsTrain(), name="bind-shadow")
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    [row] = json.loads(result.output)
    assert "'train'" in row["error"] and row["commands"] == []
    assert "not the real train" not in CliRunner().invoke(cli, ["train", "--help"]).output


def test_unknown_command_names_the_broken_plugins(registry):
    from bindcore.cli import cli

    registry.add_plugin(RaisesInCommands(), name="bind-badcmd")
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
    assert "No such command 'frobnicate'" in result.output and "bind-badcmd" in result.output


def _fake_distribution(root: Path, dist: str, module: str, source: str) -> None:
    """A plugin installed through a real ``bindcore`` entry point: a module plus a dist-info on sys.path."""
    (root / f"{module}.py").write_text(source)
    dist_info = root / f"{module}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[bindcore]\n{module} = {module}\n")


@pytest.fixture
def broken_plugins_installed(tmp_path: Path) -> dict[str, str]:
    """Three installed plugins: one exits at import, one raises in register_commands, one works; the env to use."""
    _fake_distribution(tmp_path, "bind-exits", "bind_exits", "import sys\nsys.exit(3)\n")
    _fake_distribution(tmp_path, "bind-badcmd", "bind_badcmd", (
        "import bindcore\n\n"
        "class Stub:\n    name = 'stub'\n\n"
        "@bindcore.hookimpl\ndef register_modalities(register):\n    register(Stub)\n\n"
        "@bindcore.hookimpl\ndef register_commands(cli):\n    raise RuntimeError('no commands today')\n"))
    _fake_distribution(tmp_path, "bind-good", "bind_good", (
        "import click\nimport bindcore\n\n"
        "class Good:\n    name = 'good'\n\n"
        "@bindcore.hookimpl\ndef register_modalities(register):\n    register(Good)\n\n"
        "@bindcore.hookimpl\ndef register_commands(cli):\n"
        "    @cli.command('hello')\n    def hello():\n        click.echo('hello from bind-good')\n"))
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    # only these three plugins: isolated from whatever else is installed, and no torch import
    return {**os.environ, "PYTHONPATH": path, "BINDCORE_LOAD_PLUGINS": "bind-exits,bind-badcmd,bind-good"}


def test_installed_broken_plugins_are_reported_and_do_not_kill_the_cli(broken_plugins_installed):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                              env=broken_plugins_installed)

    listed = run("-m", "bindcore.cli", "plugins", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["bind-exits"]["error"].startswith("import failed: SystemExit")
    assert "sys.exit(3)" in rows["bind-exits"]["error"]
    assert "register_commands failed: RuntimeError: no commands today" in rows["bind-badcmd"]["error"]
    assert rows["bind-good"] == {"name": "bind-good", "version": "0.1", "modalities": ["good"],
                                 "commands": ["hello"], "error": None}
    helped = run("-m", "bindcore.cli", "--help")
    assert helped.returncode == 0 and "plugins" in helped.stdout, helped.stderr
    hello = run("-m", "bindcore.cli", "hello")
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from bind-good", hello.stderr
    names = run("-c", "import bindcore; print(','.join(bindcore.list_modalities()))")
    assert names.returncode == 0 and names.stdout.strip() == "good,stub", names.stderr
