"""Recipe validation: one error listing every problem with its YAML path and a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bindcore.errors import ConfigError
from bindcore.recipe import apply_override, load_recipe, validate_recipe
from bindcore.testing.stubs import tiny_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


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


def test_unset_environment_variable_in_a_path_is_named(stubs, tmp_path, monkeypatch):
    monkeypatch.delenv("BINDCORE_TEST_DATA", raising=False)
    raw = tiny_recipe()
    raw["modalities"]["toya"]["data"] = {"kind": "manifest", "manifest": "${BINDCORE_TEST_DATA}/pairs.jsonl"}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"modalities\.toya\.data\.manifest: .*BINDCORE_TEST_DATA, which is not set"):
        load_recipe(path)
    (tmp_path / "data").mkdir()
    for name in ("a.npy", "b.npy"):
        (tmp_path / "data" / name).write_bytes(b"x")
    (tmp_path / "data" / "pairs.jsonl").write_text('{"image": "a.npy", "toya": "b.npy"}\n' * 16)
    monkeypatch.setenv("BINDCORE_TEST_DATA", str(tmp_path / "data"))
    assert load_recipe(path).modalities["toya"].data.kind == "manifest"


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
        kinds = {n: m.data.kind for n, m in recipe.modalities.items()}
        assert kinds == {"audio": "video", "depth": "sunrgbd", "thermal": "llvip", "imu": "manifest"}
        with pytest.raises(ConfigError) as missing:  # every tree under $BINDCORE_DATA is read in place
            load_recipe(RECIPES / name)
        for line in ("audio.data: video folder not found: /nonexistent/audioset/videos",
                     "depth.data: '/nonexistent/sunrgbd': no SUN RGB-D tree here",
                     "thermal.data: '/nonexistent/LLVIP': no LLVIP tree here",
                     "imu.data.manifest: file not found: /nonexistent/ego4d/train.jsonl"):
            assert line in str(missing.value)
        monkeypatch.delenv("BINDCORE_DATA")
        with pytest.raises(ConfigError, match=r"audio\.data\.root: \$\{BINDCORE_DATA\}/audioset/videos uses the "
                                              r"environment variable BINDCORE_DATA, which is not set"):
            load_recipe(RECIPES / name)
        crops = {n: m.train.augmentation.image_crop for n, m in recipe.modalities.items()}
        assert all(crop is not None and crop.scale == (0.08, 1.0) for crop in crops.values())  # Table 9's RRC
        assert recipe.modalities["depth"].train.augmentation.aligned_crop  # aligned crops: +10.7 on depth (T5e)
        rand = {n: m.train.augmentation.rand_augment for n, m in recipe.modalities.items()}
        assert rand["audio"] is None and rand["imu"] is None  # Table 9: RandAugment on depth and thermal only
        for spatial in ("depth", "thermal"):
            assert (rand[spatial].num_ops, rand[spatial].magnitude, rand[spatial].magnitude_std) == (2, 9, 0.5)
        with pytest.raises(ConfigError, match=r"depth\.train\.augmentation\.image_crop: anchor\.cache_embeddings"):
            load_recipe(RECIPES / name, check_files=False, overrides=["anchor.cache_embeddings=true"])


def _with_augmentation(augmentation: dict, **anchor) -> dict:
    raw = tiny_recipe()
    raw["modalities"]["toya"]["train"]["augmentation"] = augmentation
    raw["anchor"].update(anchor)
    return raw


@pytest.mark.parametrize("augmentation, message", [
    ({"freq_mask": 4}, "modalities.toya.train.augmentation.freq_mask: toya has no 'frequency' axis"),
    ({"time_mask": 4}, "modalities.toya.train.augmentation.time_mask: toya has no 'time' axis"),
    ({"random_erase": 0.25}, "modalities.toya.train.augmentation.random_erase: toya has no 'height' or 'width' axis"),
    ({"image_crop": {}, "aligned_crop": True},
     "modalities.toya.train.augmentation.aligned_crop: toya has no 'height' or 'width' axis"),
    ({"rand_augment": {"num_ops": 2, "magnitude": 9, "magnitude_std": 0.5}},
     "modalities.toya.train.augmentation.rand_augment: toya has no 'height' or 'width' axis"),
])
def test_augmentation_needs_the_axes_the_plugin_declares(stubs, augmentation, message):
    with pytest.raises(ConfigError) as info:
        validate_recipe(_with_augmentation(augmentation))
    assert message in str(info.value)
    assert "augment_axes: none" in str(info.value)


def test_axis_free_augmentation_and_image_crop_are_valid_for_any_modality(stubs):
    recipe = validate_recipe(_with_augmentation({"gaussian_noise": 0.1, "color_jitter": 0.2,
                                                 "image_crop": {"scale": [0.2, 1.0], "ratio": [0.5, 2.0]}}))
    augmentation = recipe.modalities["toya"].train.augmentation
    assert augmentation.image_crop.scale == (0.2, 1.0) and augmentation.active
    assert not recipe.modalities["toyb"].train.augmentation.active
    assert validate_recipe(_with_augmentation({"image_crop": {}})).modalities["toya"].train.augmentation \
        .image_crop.ratio == pytest.approx((3 / 4, 4 / 3))


def test_image_crop_with_cached_anchor_embeddings_is_rejected(stubs):
    with pytest.raises(ConfigError, match=r"modalities\.toya\.train\.augmentation\.image_crop: "
                                          r"anchor\.cache_embeddings is true.*un-augmented"):
        validate_recipe(_with_augmentation({"image_crop": {}}, cache_embeddings=True))


@pytest.mark.parametrize("rand_augment, message", [
    ({"magnitude": 11}, r"augmentation\.rand_augment\.magnitude: .*less than or equal to 10"),
    ({"ops": ["rotate", "hue"]}, r"augmentation\.rand_augment\.ops\.1: .*'equalize'"),
    ({"num_ops": 0}, r"augmentation\.rand_augment\.num_ops: .*greater than or equal to 1"),
    ({"magnitud": 9}, r"augmentation\.rand_augment\.magnitud: unknown key, did you mean magnitude\?"),
])
def test_bad_rand_augment_settings_name_their_path(stubs, rand_augment, message):
    with pytest.raises(ConfigError, match=message):
        validate_recipe(_with_augmentation({"rand_augment": rand_augment}))


def test_rand_augment_null_is_off(stubs):
    augmentation = validate_recipe(_with_augmentation({"rand_augment": None})).modalities["toya"].train.augmentation
    assert augmentation.rand_augment is None and not augmentation.active


@pytest.mark.parametrize("augmentation, message", [
    ({"aligned_crop": True}, "aligned_crop needs image_crop"),
    ({"image_crop": {"scale": [0.5, 0.2]}}, "scale must satisfy"),
    ({"image_crop": {"ratio": [0, 1]}}, "ratio must satisfy"),
])
def test_bad_crop_settings(stubs, augmentation, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_recipe(_with_augmentation(augmentation))
    assert "modalities.toya.train.augmentation" in str(info.value)


def test_imu_frequency_mask_is_rejected_with_its_path():
    if not _installed("imu"):
        pytest.skip("bind-imu is not installed")
    raw = tiny_recipe("imu")
    raw["modalities"]["imu"] = {"train": {"augmentation": {"freq_mask": 12, "time_mask": 10}}}
    with pytest.raises(ConfigError) as info:
        validate_recipe(raw)
    assert "modalities.imu.train.augmentation.freq_mask: imu has no 'frequency' axis" in str(info.value)
    assert "time_mask" not in str(info.value)  # IMU declares its time axis
