"""Saving/loading modalities and the toy world's determinism."""

from __future__ import annotations

import json
import os
import stat
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import bindcore
from bindcore import ModalityConfig, hookimpl
from bindcore.errors import ConfigError
from bindcore.io import atomic_directory, load_modality, read_meta
from bindcore.plugins import Registry, set_registry
from bindcore.toyworld import CONCEPTS, concept_code, generate_scenes


class LinearConfig(ModalityConfig):
    width: int = 4
    embed_dim: int = 3


class LinearModality(bindcore.Modality):
    name = "linear"
    Config = LinearConfig

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.layer = nn.Linear(self.config.width, self.config.embed_dim)

    def preprocess(self, inputs):
        return torch.as_tensor(np.stack(inputs), dtype=torch.float32)

    def encode(self, x):
        return self.layer(x)

    def project(self, h):
        return torch.nn.functional.normalize(h, dim=-1)


class Plugin:
    @hookimpl
    def register_modalities(self, register):
        register(LinearModality)


@pytest.fixture
def registry():
    reg = Registry(load_entry_points=False)
    reg.add_plugin(Plugin(), name="bind-linear")
    previous = set_registry(reg)
    yield reg
    set_registry(previous)


def test_save_load_round_trip_and_licence_warning(registry, tmp_path):
    module = bindcore.modality("linear", width=5)
    target = module.save(tmp_path / "linear", license="CC-BY-NC-4.0")
    meta = read_meta(target)
    assert meta["modality"] == "linear" and meta["config"] == {"width": 5, "embed_dim": 3}
    bindcore.io._warned_licenses.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_modality(target)
        load_modality(target)
    assert [str(w.message) for w in caught if "non-commercial" in str(w.message)] == [
        f"{target}: these weights are licensed CC-BY-NC-4.0 (non-commercial use only)"
    ]
    for key, value in module.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    x = [np.ones(5, dtype=np.float32)]
    assert torch.equal(module.embed(x), loaded.embed(x))


def test_save_refuses_to_overwrite_and_leaves_no_partial_dir(registry, tmp_path):
    module = bindcore.modality("linear")
    module.save(tmp_path / "m")
    with pytest.raises(FileExistsError):
        module.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_load_of_non_model_dir_says_what_is_missing(tmp_path):
    with pytest.raises(ConfigError, match=r"bindcore\.json"):
        load_modality(tmp_path)


def test_embed_rejects_non_finite_rows(registry):
    module = bindcore.modality("linear")
    with pytest.raises(bindcore.NonFiniteError, match=r"rows \[1\]"):
        module.embed([np.ones(4, np.float32), np.full(4, np.nan, np.float32)])


def test_scenes_are_deterministic_balanced_and_varied():
    a, b = generate_scenes(50, seed=3), generate_scenes(50, seed=3)
    assert a == b
    assert generate_scenes(50, seed=4) != a
    counts = np.bincount([s.concept for s in a], minlength=len(CONCEPTS))
    assert counts.min() == counts.max() == 5
    assert len({round(s.x, 6) for s in a}) == 50
    assert a[0].rng("audio").random() == b[0].rng("audio").random() != a[0].rng("depth").random()
    assert np.array_equal(concept_code(2, "vision", 3), concept_code(2, "vision", 3))
    assert not np.array_equal(concept_code(2, "vision", 3), concept_code(3, "vision", 3))
    json.dumps([s.__dict__ for s in a])  # scenes are plain data


def test_error_item_names_keep_the_file_name():
    from pathlib import Path

    from bindcore.errors import InputError

    deep = "/tmp/" + "nested/" * 30 + "recording.csv"
    assert "recording.csv" in str(InputError(deep, "bad"))
    assert "recording.csv" in str(InputError(Path(deep), "bad"))
    assert len(str(InputError("x" * 1000, "bad"))) < 200


@pytest.mark.parametrize(("mask", "dir_mode", "file_mode"), [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_saved_modality_follows_the_umask(registry, tmp_path, mask, dir_mode, file_mode):
    previous = os.umask(mask)
    try:
        target = bindcore.modality("linear").save(tmp_path / "m")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == dir_mode
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()} == {
        "bindcore.json": file_mode, "model.safetensors": file_mode}


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


def test_atomic_directory_replaces_only_a_completed_directory(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite"):
        with atomic_directory(target):
            pytest.fail("the block must not run when the target exists")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_directory(target, overwrite=True) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("midway")
    assert _tree(tmp_path) == {"out": None, "out/old.txt": b"old"}  # untouched, staging removed
    with atomic_directory(target, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
        assert _tree(target) == {"old.txt": b"old"}  # nothing replaced before the block ends
    assert _tree(tmp_path) == {"out": None, "out/new.txt": b"new"}


def test_atomic_directory_through_a_symlink_replaces_the_linked_directory(tmp_path):
    real = tmp_path / "disk" / "models"
    real.mkdir(parents=True)
    (real / "old.txt").write_text("old")
    link = tmp_path / "models"
    link.symlink_to(real)
    with atomic_directory(link, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert link.is_symlink() and _tree(real) == {"new.txt": b"new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "models"]
    assert [p.name for p in (tmp_path / "disk").iterdir()] == ["models"]


def test_failed_save_with_overwrite_keeps_the_previous_save(registry, tmp_path, monkeypatch):
    module = bindcore.modality("linear", width=5)
    target = module.save(tmp_path / "m")
    before = _tree(target)

    def broken_state_dict(*args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(module, "state_dict", broken_state_dict)
    with pytest.raises(RuntimeError, match="injected"):
        module.save(target, overwrite=True)
    assert _tree(target) == before and [p.name for p in tmp_path.iterdir()] == ["m"]


@pytest.mark.parametrize(("mask", "dir_mode"), [(0o022, 0o755), (0o077, 0o700)])
def test_new_modality_plugin_folder_follows_the_umask(tmp_path, mask, dir_mode):
    from bindcore.commands.new_modality import render_template

    previous = os.umask(mask)
    try:
        target = render_template("tactile", tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == dir_mode  # was always 0755 (a chmod of mkdtemp's 0700)
    assert [p.name for p in tmp_path.iterdir()] == ["bind-tactile"]


# -- atomic_file -------------------------------------------------------------------------------------------
def test_atomic_file_that_fails_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from bindcore.io import atomic_file

    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_file(target, "w") as handle:
            handle.write("half of the new")
            handle.flush()
            raise RuntimeError("midway")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    with atomic_file(tmp_path / "new" / "deeper" / "out.bin") as handle:  # parents are made
        assert os.path.basename(handle.name).startswith(f".out.bin.tmp-{os.getpid()}-")
        handle.write(b"\x00new")
    assert (tmp_path / "new" / "deeper" / "out.bin").read_bytes() == b"\x00new"
    assert os.listdir(tmp_path / "new" / "deeper") == ["out.bin"]


@pytest.mark.parametrize(("mask", "file_mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_atomic_file_follows_the_umask(tmp_path, mask, file_mode):
    from bindcore.io import atomic_file

    previous = os.umask(mask)
    try:
        with atomic_file(tmp_path / "out.txt", "w") as handle:
            handle.write("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == file_mode


# -- damaged saved modalities ------------------------------------------------------------------------------
def _damage_meta(target, text):
    (target / "bindcore.json").write_text(text)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda t: _damage_meta(t, "{\"modality\": "), r"bindcore\.json is damaged .*save the modality again"),
    (lambda t: _damage_meta(t, json.dumps({"config": {}})),
     r"bindcore\.json lacks the 'modality' name .*save the modality again"),
    (lambda t: (t / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json"),
     r"model\.safetensors is damaged or not a safetensors file .*save the modality again"),
    (lambda t: (t / "model.safetensors").unlink(), r"model\.safetensors is missing: .*save the modality again"),
    (lambda t: _damage_meta(t, json.dumps({**json.loads((t / "bindcore.json").read_text()),
                                           "config": {"width": 7, "embed_dim": 3}})),
     r"model\.safetensors does not match the 'linear' config in bindcore\.json .*size mismatch"),
])
def test_a_damaged_saved_modality_raises_a_config_error_naming_the_file(registry, tmp_path, damage, message):
    target = bindcore.modality("linear", width=5).save(tmp_path / "m")
    damage(target)
    with pytest.raises(ConfigError, match=message) as info:
        load_modality(target)
    assert str(target) in str(info.value)


# -- one seed hash -----------------------------------------------------------------------------------------
def test_the_seed_hash_is_shared_and_unchanged():
    from bindcore import toyworld
    from bindcore.data import plan

    assert plan.seed_of is toyworld.seed_of
    # values of the two former copies (data.plan.seed_of, toyworld._stable_seed) before they were merged
    assert plan.seed_of("scene", 0, "train") == 8831983900447399464
    assert plan.seed_of("concept", "dog", 3) == 15580789891316312796
    assert plan.seed_of("substitute", 7, "audio", 12, 0) == 2546516504260786657
    assert plan.seed_of() == 1449310910991872227
