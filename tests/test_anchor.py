"""The frozen anchor: building from configs, saving/reloading, the fast offline error, and frozenness."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from bindcore import anchor as anchor_mod
from bindcore.anchor import (
    AnchorConfig,
    FrozenAnchor,
    clear_anchor_cache,
    freeze,
    load_anchor,
    save_anchor,
    tiny_anchor_config,
)
from bindcore.errors import AnchorUnavailableError, ConfigError

TINY = tiny_anchor_config(embed_dim=16, image_size=16, patch_size=8, width=32, layers=1, heads=2)


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(3, 3, 16, 16, generator=gen)
    ids = torch.zeros(3, 77, dtype=torch.long)
    ids[:, 0] = 49406
    ids[:, 1:4] = torch.randint(1, 49000, (3, 3), generator=gen)
    ids[:, 4] = 49407
    return images, ids


@pytest.fixture
def tiny() -> FrozenAnchor:
    return load_anchor(arch=TINY)


def test_tiny_anchor_exposes_what_the_towers_expect(tiny: FrozenAnchor) -> None:
    assert tiny.embed_dim == 16
    assert tiny.image_size == (16, 16)
    assert tiny.context_length == 77
    assert tiny.vocab_size == 49408
    assert tiny.image_mean == pytest.approx(anchor_mod.CLIP_MEAN)
    assert tiny.image_std == pytest.approx(anchor_mod.CLIP_STD)
    assert tiny.tokenizer("a dog").shape == (1, 77)
    images, ids = _inputs()
    z_img, z_txt = tiny.encode_image(images), tiny.encode_text(ids)
    assert z_img.shape == (3, 16) and z_txt.shape == (3, 16)
    torch.testing.assert_close(z_img.norm(dim=-1), torch.ones(3))
    # The two-step split composes to exactly what open_clip computes in one go.
    torch.testing.assert_close(tiny.project_image(tiny.image_features(images)),
                               nn.functional.normalize(tiny.model.encode_image(images), dim=-1), rtol=0, atol=1e-6)
    torch.testing.assert_close(tiny.project_text(tiny.text_features(ids)),
                               nn.functional.normalize(tiny.model.encode_text(ids), dim=-1), rtol=0, atol=1e-6)
    assert tiny.image_features(images).shape == (3, 32)  # trunk width, before the projection


def test_load_anchor_is_cached_per_config(tiny: FrozenAnchor) -> None:
    assert load_anchor(AnchorConfig(arch=TINY)) is tiny
    other_seed = load_anchor(arch=TINY, seed=1)
    assert other_seed is not tiny
    assert not torch.equal(other_seed.model.visual.conv1.weight, tiny.model.visual.conv1.weight)


def test_random_init_is_seeded_and_leaves_global_rng_alone() -> None:
    clear_anchor_cache()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = load_anchor(arch=TINY, seed=5)
    after = torch.rand(1)
    assert torch.equal(before, after)
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}
    del first
    clear_anchor_cache()
    second = load_anchor(arch=TINY, seed=5)
    for key, value in second.model.state_dict().items():
        assert torch.equal(value, weights[key]), key


@pytest.mark.parametrize("fmt", ["file", "local-dir"])
def test_save_and_reload_give_identical_outputs(tiny: FrozenAnchor, tmp_path, fmt: str) -> None:
    # Perturb the weights first, so a reload that silently fell back to the seeded init would be caught.
    trained = load_anchor(arch=TINY, seed=9)
    path = tmp_path / ("anchor.safetensors" if fmt == "file" else "anchor_dir")
    config = save_anchor(trained, path, format=fmt)
    if fmt == "file":
        assert config.checkpoint == str(path) and config.arch == TINY
    else:
        assert config.model == f"local-dir:{path}"
        assert (path / "open_clip_config.json").is_file() and (path / "open_clip_model.safetensors").is_file()
    reloaded = load_anchor(config)
    assert reloaded is not trained
    images, ids = _inputs(1)
    assert torch.equal(reloaded.encode_image(images), trained.encode_image(images))
    assert torch.equal(reloaded.encode_text(ids), trained.encode_text(ids))
    assert not torch.equal(reloaded.encode_image(images), tiny.encode_image(images))
    assert reloaded.embed_dim == 16 and reloaded.image_size == (16, 16)


def test_freeze_an_open_clip_model_then_save(tmp_path) -> None:
    from open_clip import CLIP

    model = CLIP(**TINY)
    model.train()
    frozen = freeze(model, arch=TINY)
    assert isinstance(frozen, FrozenAnchor) and not frozen.training and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert freeze(frozen) is frozen
    config = save_anchor(frozen, tmp_path / "a.safetensors")
    images, _ = _inputs()
    assert torch.equal(load_anchor(config).encode_image(images), frozen.encode_image(images))
    with pytest.raises(ConfigError, match="arch"):
        save_anchor(freeze(CLIP(**TINY)), tmp_path / "b.safetensors")


def test_config_validation_is_strict() -> None:
    assert AnchorConfig().model == "ViT-H-14" and AnchorConfig().pretrained == "laion2b_s32b_b79k"
    assert AnchorConfig(arch=TINY).model is None
    assert AnchorConfig(model="ViT-B-32").pretrained is None
    with pytest.raises(ConfigError, match="valid keys"):
        load_anchor(arhc=TINY)
    with pytest.raises(ValueError, match="not both"):
        AnchorConfig(arch=TINY, model="ViT-B-32")
    with pytest.raises(ValueError, match="embed_dim"):
        AnchorConfig(arch={"vision_cfg": {}, "text_cfg": {}})
    with pytest.raises(ValueError, match="checkpoint"):
        AnchorConfig(model="ViT-B-32", checkpoint="x.pt")
    with pytest.raises(ValueError, match="pretrained"):
        AnchorConfig(model="local-dir:/nowhere", pretrained="laion2b_s32b_b79k")
    with pytest.raises(ConfigError, match="tags"):
        load_anchor(model="ViT-B-32", pretrained="no_such_tag")
    with pytest.raises(ConfigError, match="unknown open_clip model"):
        load_anchor(model="ViT-Nope-1")


def test_missing_or_mismatched_weights_are_explained(tmp_path) -> None:
    with pytest.raises(AnchorUnavailableError, match="not found"):
        load_anchor(arch=TINY, checkpoint=str(tmp_path / "missing.safetensors"))
    with pytest.raises(AnchorUnavailableError, match=r"open_clip_config\.json"):
        load_anchor(model=f"local-dir:{tmp_path}")
    other = tiny_anchor_config(embed_dim=8, image_size=16, patch_size=8, width=32, layers=1, heads=2)
    config = save_anchor(load_anchor(arch=other), tmp_path / "other.safetensors")
    with pytest.raises(ConfigError, match="does not match"):
        load_anchor(arch=TINY, checkpoint=config.checkpoint)


def test_offline_error_is_fast_and_names_the_fix(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(AnchorUnavailableError) as info:
        load_anchor(model="ViT-H-14", pretrained="laion2b_s32b_b79k", cache_dir=str(tmp_path))
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message
    assert "pretrained='/path/to/" in message and "local-dir:" in message


def test_a_failed_download_names_the_fix(monkeypatch, tmp_path) -> None:
    # Online (HF_HUB_OFFLINE unset) but the download fails: open_clip's own error becomes an AnchorUnavailableError
    # that says how to pass a local file (bindcore does not probe the network itself).
    import open_clip.factory

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(anchor_mod.build, "hub_offline", lambda: False)

    def no_route(*_args, **_kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", no_route)
    with pytest.raises(AnchorUnavailableError, match="Network is unreachable") as info:
        load_anchor(model="ViT-H-14", cache_dir=str(tmp_path))
    assert "pretrained='/path/to/" in str(info.value) and "local-dir:" in str(info.value)


def test_a_pretrained_file_path_is_used_for_a_named_model(tmp_path, monkeypatch) -> None:
    # Name + file: open_clip's own architecture for the name, weights from the file (no network involved).
    import open_clip

    monkeypatch.setattr(open_clip.factory, "get_model_config",
                        lambda name: dict(TINY) if name == "Tiny-Test" else None)
    monkeypatch.setattr(open_clip, "get_model_config", lambda name: dict(TINY) if name == "Tiny-Test" else None)
    source = load_anchor(arch=TINY, seed=3)
    path = tmp_path / "tiny.safetensors"
    save_anchor(source, path)
    named = load_anchor(model="Tiny-Test", pretrained=str(path))
    images, ids = _inputs(2)
    assert torch.equal(named.encode_image(images), source.encode_image(images))
    assert torch.equal(named.encode_text(ids), source.encode_text(ids))


def test_a_tag_already_in_the_hub_cache_loads_offline(tmp_path, monkeypatch) -> None:
    # A pretrained tag served from the Hugging Face hub, whose weights were downloaded earlier: with
    # HF_HUB_OFFLINE=1 the cached file is found and used (no network, no error).
    import open_clip
    import open_clip.factory
    import open_clip.pretrained

    def model_config(name):
        return dict(TINY) if name == "Tiny-Test" else None

    def pretrained_cfg(name, tag):
        return {"hf_hub": "someorg/tiny-clip/"} if (name, tag) == ("Tiny-Test", "cached_tag") else {}

    for module in (open_clip, open_clip.factory):
        monkeypatch.setattr(module, "get_model_config", model_config)
    for module in (open_clip, open_clip.factory, open_clip.pretrained):
        monkeypatch.setattr(module, "get_pretrained_cfg", pretrained_cfg)
    snapshot = tmp_path / "models--someorg--tiny-clip" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (tmp_path / "models--someorg--tiny-clip" / "refs").mkdir()
    (tmp_path / "models--someorg--tiny-clip" / "refs" / "main").write_text("0" * 40)
    source = load_anchor(arch=TINY, seed=8)
    save_anchor(source, snapshot / "open_clip_model.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    named = load_anchor(model="Tiny-Test", pretrained="cached_tag", cache_dir=str(tmp_path))
    images, _ = _inputs(3)
    assert torch.equal(named.encode_image(images), source.encode_image(images))
    with pytest.raises(AnchorUnavailableError, match="HF_HUB_OFFLINE"):
        load_anchor(model="Tiny-Test", pretrained="cached_tag", cache_dir=str(tmp_path / "empty"))


def test_a_local_dir_recording_a_non_commercial_licence_warns_once(tmp_path, monkeypatch) -> None:
    import json
    import warnings

    from bindcore import io as bindcore_io

    monkeypatch.setattr(bindcore_io, "_warned_licenses", set())
    folders = []
    for seed in (3, 4):  # two folders, so the second load is a fresh build, not the anchor cache
        folder = tmp_path / f"anchor_{seed}"
        save_anchor(load_anchor(arch=TINY, seed=seed), folder, format="local-dir")
        config_file = folder / "open_clip_config.json"
        content = json.loads(config_file.read_text())
        content["bindcore"] = {"license": "CC-BY-NC-4.0", "source": "imagebind_huge.pth"}  # as `bindcore convert`
        config_file.write_text(json.dumps(content))
        folders.append(folder)
    with pytest.warns(UserWarning, match="CC-BY-NC-4.0.*non-commercial"):
        first = load_anchor(model=f"local-dir:{folders[0]}")
    assert first.weights_license == "CC-BY-NC-4.0" and first.weights_source == "imagebind_huge.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = load_anchor(model=f"local-dir:{folders[1]}")
    assert second.weights_license == "CC-BY-NC-4.0"


def test_a_local_dir_without_a_recorded_licence_does_not_warn(tiny: FrozenAnchor, tmp_path, monkeypatch) -> None:
    import warnings

    from bindcore import io as bindcore_io

    monkeypatch.setattr(bindcore_io, "_warned_licenses", set())
    config = save_anchor(tiny, tmp_path / "plain", format="local-dir")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        anchor = load_anchor(config)
    assert anchor.weights_license is None
