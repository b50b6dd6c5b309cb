"""Fine-tuning converted ImageBind weights (the small reference model stands in for imagebind_huge.pth): the
converted anchor as the recipe's anchor, ``init`` from the converted audio encoder, freezing by block, LoRA on every
projection, the CC-BY-NC licence travelling into the run, ``export --merge``, and recipes/finetune-audio.yaml."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

import bindcore
import bindcore.io
from bindcore.convert import convert_imagebind
from bindcore.errors import ConfigError
from bindcore.recipe import load_recipe, validate_recipe
from bindcore.testing.parity import parity_vectors_path
from bindcore.train.trainer import train

SMALL = parity_vectors_path() / "small_model"
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "finetune-audio.yaml"
pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SMALL / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {SMALL} (set BINDCORE_PARITY_DIR)")
    kwargs = json.loads((SMALL / "config.json").read_text())["kwargs"]
    heads = {m: kwargs[f"{m}_num_heads"] for m in ("vision", "text", "audio", "depth", "thermal", "imu")}
    out = tmp_path_factory.mktemp("converted") / "imagebind_small"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        convert_imagebind(SMALL / "state_dict.pt", out, heads=heads)
    return out


def _recipe(converted: Path, **train_settings) -> dict:
    return {
        "name": "finetune-small",
        "run": {"seed": 0, "device": "cpu", "checkpoint_every": 2, "tensorboard": False, "progress": False,
                "threads": 1},
        "anchor": {"model": f"local-dir:{converted / 'anchor'}"},
        "data": {"toy": {"train_scenes": 8, "eval_scenes": 10}, "workers": 0},
        "eval": {"enabled": False},
        "modalities": {"audio": {"init": str(converted / "audio"), "clips_per_item": 1,
                                 "train": {"batch_size": 4, "max_steps": 2, "lr": 1e-3, **train_settings}}},
    }


def _toy_audio(module, count: int = 3) -> list:
    from bindcore.toyworld import generate_scenes

    return [module.render_toy(scene) for scene in generate_scenes(count, 3)]


def test_converted_weights_freeze_and_their_licence_travels(converted, tmp_path):
    lines: list[str] = []
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(validate_recipe(_recipe(converted, freeze=["stem", "blocks.0"])), out, log=lines.append)
    before = load_file(str(converted / "audio" / "model.safetensors"))
    after = load_file(str(out / "modalities" / "audio" / "model.safetensors"))
    frozen = [k for k in before if k.startswith(("encoder.proj", "encoder.stem_norm", "encoder.pos_embed",
                                                  "encoder.cls_token", "encoder.trunk.blocks.0."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["head.proj.weight"], after["head.proj.weight"])
    total = sum(v.numel() for v in before.values())
    trainable = total - sum(before[k].numel() for k in frozen)
    assert f"audio: trainable {trainable:,} of {total:,} parameters" in lines
    assert any("licensed CC-BY-NC-4.0 (non-commercial use only)" in line for line in lines)
    meta = json.loads((out / "modalities" / "audio" / "bindcore.json").read_text())
    assert meta["license"] == "CC-BY-NC-4.0" and meta["config"]["width"] == 64
    bindcore.io._warned_licenses.discard("CC-BY-NC-4.0")
    with pytest.warns(UserWarning, match="CC-BY-NC-4.0"):
        bindcore.load_modality(out / "modalities" / "audio")


def test_lora_on_converted_audio_exports_merged_weights_that_embed_the_same(converted, tmp_path):
    from bindcore.nn.lora import ADAPTER_FILE, has_lora
    from bindcore.train.finetune import export_merged

    out = tmp_path / "lora"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(validate_recipe(_recipe(converted, lora={"rank": 8})), out, log=lambda _m: None)
        adapter = load_file(str(out / "modalities" / "audio" / ADAPTER_FILE))
        assert len(adapter) == 2 * 4 * 2  # 2 blocks × qkv/out/fc1/fc2 × A, B
        export_merged(out, tmp_path / "merged", log=lambda _m: None)
        adapted = bindcore.load_modality(out / "modalities" / "audio")
        merged = bindcore.load_modality(tmp_path / "merged" / "audio")
    meta = json.loads((tmp_path / "merged" / "audio" / "bindcore.json").read_text())
    assert meta["license"] == "CC-BY-NC-4.0"
    assert has_lora(adapted) and not has_lora(merged)
    items = _toy_audio(adapted)
    torch.testing.assert_close(merged.embed(items), adapted.embed(items), atol=1e-5, rtol=0)


def test_recipe_keys_that_contradict_the_converted_shapes(converted):
    raw = _recipe(converted)
    raw["modalities"]["audio"].update(num_layers=12, target_length=100, drop_path=0.0)
    with pytest.raises(ConfigError) as caught:
        validate_recipe(raw)
    message = str(caught.value)
    assert "modalities.audio.num_layers: 12 contradicts the 2 of the weights in" in message
    assert "modalities.audio.target_length: 100 contradicts the 204" in message
    assert "drop_path" not in message  # shapes unchanged: the recipe may set it


def _manifest(tmp_path: Path) -> Path:
    """A six-row manifest of real files (validation checks they exist; a val split needs 5 rows for R@5)."""
    rows = []
    for i in range(6):
        (tmp_path / f"frame{i}.jpg").write_bytes(b"jpg")
        (tmp_path / f"clip{i}.wav").write_bytes(b"wav")
        rows.append(json.dumps({"image": f"frame{i}.jpg", "audio": f"clip{i}.wav"}))
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return path


def _recipe_environment(converted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = _manifest(tmp_path)
    for key, value in {"IMAGEBIND_DIR": converted, "AUDIO_MANIFEST": manifest, "AUDIO_VAL_MANIFEST": manifest,
                       "ESC50_ROOT": tmp_path}.items():
        monkeypatch.setenv(key, str(value))


def test_finetune_audio_recipe_validates_without_the_keys_of_other_issues(converted, tmp_path, monkeypatch):
    """Everything but data.val and eval.benchmarks (added by the validation and benchmark issues)."""
    _recipe_environment(converted, tmp_path, monkeypatch)
    raw = yaml.safe_load(RECIPE.read_text())
    raw["eval"].pop("benchmarks")
    raw["modalities"]["audio"]["data"].pop("val")
    raw["modalities"]["audio"]["train"]["batch_size"] = 2  # the stand-in manifest has six rows
    recipe = validate_recipe(raw, source=RECIPE)
    audio = recipe.modalities["audio"]
    assert audio.train.lora.rank == 8 and audio.init == converted / "audio"
    assert audio.config.width == 64  # read from the converted directory
    assert recipe.anchor_source().local_dir == converted / "anchor"


def test_finetune_audio_recipe_validates_whole(converted, tmp_path, monkeypatch):
    from bindcore.recipe.schema import EvalSettings, ModalityData

    if "val" not in ModalityData.model_fields or "benchmarks" not in EvalSettings.model_fields:
        pytest.skip("modalities.<name>.data.val / eval.benchmarks are not in the recipe schema yet")
    _recipe_environment(converted, tmp_path, monkeypatch)
    recipe = load_recipe(RECIPE, overrides=["modalities.audio.train.batch_size=2"])
    assert recipe.modalities["audio"].train.lora.rank == 8


def test_lora_merge_is_exact_on_the_reference_inputs(converted):
    """The converted audio encoder with random adapters, merged, reproduces the adapter model on the parity
    vectors' preprocessed audio."""
    from bindcore.nn.lora import add_lora, merge_lora

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = bindcore.load_modality(converted / "audio")
    add_lora(module, ["qkv", "out", "fc1", "fc2"], rank=8, alpha=16)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name.endswith("lora_B"):
                param.normal_(0, 0.02)
    meta = json.loads((parity_vectors_path() / "generation_meta.json").read_text())
    x = torch.from_numpy(np.stack([np.load(parity_vectors_path() / "preprocessed" / "audio" / f"{n}.npy")
                                   for n in meta["audio_order"]]))
    with torch.no_grad():
        adapted = module.eval()(module.to_model_input(x))
        merged = merge_lora(module).eval()(module.to_model_input(x))
    torch.testing.assert_close(merged, adapted, atol=1e-5, rtol=0)
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
