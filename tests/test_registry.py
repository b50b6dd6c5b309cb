"""The plugin registry: strict duplicate/unknown errors, fault isolation, and `bindcore plugins`."""

from __future__ import annotations

import json
import subprocess
import sys

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
    assert info.as_dict() == {"name": "bind-multi", "version": "1.2", "modalities": ["zeta", "alpha"], "error": None}


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
