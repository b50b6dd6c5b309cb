"""Recipe validation: one error listing every problem with its YAML path and a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bindcore.errors import ConfigError
from bindcore.plugins import set_registry
from bindcore.train.recipe import apply_override, load_recipe, validate_recipe
from bindcore.train.stubs import stub_registry, tiny_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.fixture
def stubs():
    previous = set_registry(stub_registry("toya", "toyb"))
    yield
    set_registry(previous)


def test_valid_tiny_recipe(stubs):
    recipe = validate_recipe(tiny_recipe())
    assert set(recipe.modalities) == {"toya", "toyb"}
    assert recipe.modalities["toya"].config.embed_dim == 16
    assert recipe.modalities["toya"].train.batch_size == 16


def test_every_problem_in_one_message_with_paths_and_suggestions(stubs):
    raw = tiny_recipe()
    raw["modalities"]["toya"]["widht"] = 8
    raw["modalities"]["toyb"]["train"]["lrr"] = 0.1
    raw["run"]["seed"] = "not a number"
    raw["modalities"]["toyc"] = {}
    with pytest.raises(ConfigError) as info:
        validate_recipe(raw)
    message = str(info.value)
    assert "4 problems" in message
    assert "modalities.toya.widht: unknown key, did you mean width?" in message
    assert "modalities.toyb.train.lrr: unknown key, did you mean lr?" in message
    assert "run.seed:" in message
    assert "modalities.toyc: unknown modality, did you mean toy" in message


def test_wrong_type_and_range(stubs):
    raw = tiny_recipe()
    raw["modalities"]["toya"]["train"]["batch_size"] = 1
    raw["modalities"]["toya"]["train"]["temperature"] = "cold"
    with pytest.raises(ConfigError) as info:
        validate_recipe(raw)
    assert "modalities.toya.train.batch_size" in str(info.value)
    assert "modalities.toya.train.temperature" in str(info.value)


def test_missing_manifest_reported_before_work(stubs, tmp_path):
    raw = tiny_recipe()
    raw["modalities"]["toya"]["data"] = {"kind": "manifest", "manifest": "nowhere/pairs.jsonl"}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"modalities\.toya\.data\.manifest: file not found: .*nowhere"):
        load_recipe(path)
    assert load_recipe(path, check_files=False).modalities["toya"].data.kind == "manifest"


def test_anchor_modalities_cannot_be_bound(stubs):
    raw = tiny_recipe()
    raw["modalities"]["vision"] = {}
    with pytest.raises(ConfigError, match="frozen anchor"):
        validate_recipe(raw)


def test_override_and_drop_path_goes_to_plugin_config(stubs):
    raw = apply_override(tiny_recipe(), "modalities.toya.train.drop_path=0.3")
    recipe = validate_recipe(raw)
    assert recipe.modalities["toya"].config.drop_path == 0.3


def test_not_a_mapping_and_bad_yaml(stubs, tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        validate_recipe([1, 2])
    path = tmp_path / "bad.yaml"
    path.write_text("run: {seed: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(path)


def _installed(*names: str) -> bool:
    from bindcore.plugins import get_registry

    try:
        return all(get_registry().get(n) for n in names)
    except Exception:
        return False


@pytest.mark.parametrize("name", ["demo.yaml", "all6.yaml"])
def test_shipped_recipes_validate(name, monkeypatch):
    if not _installed("audio", "depth", "thermal", "imu", "vision"):
        pytest.skip("the audio/depth/thermal/imu/vision plugins are not all installed")
    monkeypatch.setenv("BINDCORE_DATA", "/nonexistent")
    recipe = load_recipe(RECIPES / name, check_files=False)
    assert set(recipe.modalities) == {"audio", "depth", "thermal", "imu"}
    if name == "all6.yaml":
        assert recipe.anchor.model == "ViT-H-14" and recipe.anchor.pretrained == "laion2b_s32b_b79k"
        temps = {n: m.train.temperature for n, m in recipe.modalities.items()}
        assert temps == {"audio": 0.05, "depth": 0.2, "thermal": 0.1, "imu": 0.2}
        with pytest.raises(ConfigError, match=r"audio\.data\.manifest: file not found"):
            load_recipe(RECIPES / name)
