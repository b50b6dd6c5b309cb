"""Converting ImageBind checkpoints: safe reading, streamed safetensors, the open_clip anchor, parity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from bindcore.convert import (
    IMAGEBIND_HUGE_HEADS,
    imagebind_to_open_clip,
    load_checkpoint,
    read_open_clip_license,
    resize_pos_embed_like_imagebind,
    resolve_heads,
    split_by_modality,
    write_open_clip_dir,
    write_safetensors,
)
from bindcore.errors import ConfigError
from bindcore.testing.parity import parity_vectors_path

PARITY = parity_vectors_path()
SMALL = PARITY / "small_model"


def parity_dir() -> Path:
    if not (SMALL / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {PARITY} (set BINDCORE_PARITY_DIR)")
    return PARITY


def unit(array: np.ndarray) -> np.ndarray:
    return array / np.linalg.norm(array, axis=-1, keepdims=True)


# -- a synthetic ImageBind vision/text layout of any size ------------------------------------------------
def fake_towers(*, v_width=48, v_depth=3, patch=4, grid=3, t_width=40, t_depth=2, vocab=50, context=9, dim=24,
                seed=0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * 0.2

    sd = {
        "modality_preprocessors.vision.cls_token": r(1, 1, v_width),
        "modality_preprocessors.vision.rgbt_stem.proj.1.weight": r(v_width, 3, 2, patch, patch),
        "modality_preprocessors.vision.pos_embedding_helper.pos_embed": r(1, grid * grid + 1, v_width),
        "modality_trunks.vision.pre_transformer_layer.0.weight": 1 + r(v_width),
        "modality_trunks.vision.pre_transformer_layer.0.bias": r(v_width),
        "modality_heads.vision.0.weight": 1 + r(v_width),
        "modality_heads.vision.0.bias": r(v_width),
        "modality_heads.vision.2.weight": r(dim, v_width),
        "modality_preprocessors.text.pos_embed": r(1, context, t_width),
        "modality_preprocessors.text.mask": torch.full((context, context), float("-inf")).triu(1),
        "modality_preprocessors.text.token_embedding.weight": r(vocab, t_width),
        "modality_heads.text.proj.0.weight": 1 + r(t_width),
        "modality_heads.text.proj.0.bias": r(t_width),
        "modality_heads.text.proj.1.weight": r(dim, t_width),
        "modality_postprocessors.text.1.log_logit_scale": torch.tensor(math.log(20.0)),
    }
    for name, width, depth in (("vision", v_width, v_depth), ("text", t_width, t_depth)):
        for i in range(depth):
            p = f"modality_trunks.{name}.blocks.{i}."
            sd.update({
                p + "attn.in_proj_weight": r(3 * width, width), p + "attn.in_proj_bias": r(3 * width),
                p + "attn.out_proj.weight": r(width, width), p + "attn.out_proj.bias": r(width),
                p + "norm_1.weight": 1 + r(width), p + "norm_1.bias": r(width),
                p + "norm_2.weight": 1 + r(width), p + "norm_2.bias": r(width),
                p + "mlp.fc1.weight": r(4 * width, width), p + "mlp.fc1.bias": r(4 * width),
                p + "mlp.fc2.weight": r(width, 4 * width), p + "mlp.fc2.bias": r(width),
            })
    return sd


def open_clip_from(tmp_path: Path, sd: dict[str, torch.Tensor], heads: int, name: str = "anchor"):
    import open_clip

    groups = split_by_modality(sd)
    config, state = imagebind_to_open_clip(groups["vision"], groups["text"], vision_heads=heads, text_heads=heads)
    folder = write_open_clip_dir(tmp_path / name, config, state, license="CC-BY-NC-4.0", source="test")
    return open_clip.create_model(f"local-dir:{folder}").eval(), config, folder


# -- streamed safetensors writer ---------------------------------------------------------------------------
def test_write_safetensors_round_trips_views_dtypes_and_metadata(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    tensors = {
        "transposed": base.t(),  # non-contiguous view
        "scalar": torch.tensor(3.5),
        "half": torch.randn(3, 2).half(),
        "bf16": torch.randn(5).bfloat16(),
        "ints": torch.arange(7, dtype=torch.int64),
        "flags": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
    }
    path = write_safetensors(tmp_path / "x.safetensors", tensors, metadata={"license": "CC-BY-NC-4.0"})
    loaded = load_file(str(path))
    assert set(loaded) == set(tensors)
    for key, value in tensors.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata() == {"license": "CC-BY-NC-4.0"}


def test_write_safetensors_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="complex"):
        write_safetensors(tmp_path / "c.safetensors", {"z": torch.zeros(2, dtype=torch.complex64)})


# -- safe checkpoint reading -------------------------------------------------------------------------------
def test_load_checkpoint_unwraps_and_strips_module_prefix(tmp_path: Path) -> None:
    sd = {"module.modality_heads.imu.0.weight": torch.ones(3)}
    torch.save({"state_dict": sd}, tmp_path / "c.pth")
    loaded = load_checkpoint(tmp_path / "c.pth")
    assert list(loaded) == ["modality_heads.imu.0.weight"]
    assert torch.equal(loaded["modality_heads.imu.0.weight"], torch.ones(3))


class _NotAllowed:
    pass


def test_load_checkpoint_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    torch.save({"x": _NotAllowed()}, tmp_path / "evil.pth")
    with pytest.raises(ConfigError, match="weights_only"):
        load_checkpoint(tmp_path / "evil.pth")
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")


def test_split_by_modality_groups_and_rejects_foreign_keys() -> None:
    sd = fake_towers()
    groups = split_by_modality(sd)
    assert set(groups) == {"vision", "text"}
    assert sum(len(g) for g in groups.values()) == len(sd)
    with pytest.raises(ConfigError, match="not an ImageBind checkpoint"):
        split_by_modality({**sd, "visual.proj": torch.zeros(1)})


def test_resolve_heads_defaults_and_overrides() -> None:
    assert resolve_heads(None) == IMAGEBIND_HUGE_HEADS
    assert resolve_heads({"audio": 4})["audio"] == 4
    with pytest.raises(ConfigError, match="unknown modality"):
        resolve_heads({"smell": 2})


# -- the open_clip anchor --------------------------------------------------------------------------------
def _reference_vision(sd: dict[str, torch.Tensor], images: torch.Tensor, heads: int) -> torch.Tensor:
    """ImageBind's vision forward written out directly (repeat to 2 frames + Conv3d, sequence-first MHA)."""
    pre, trunk = "modality_preprocessors.vision.", "modality_trunks.vision."
    video = images.unsqueeze(2).repeat(1, 1, 2, 1, 1)
    stem = sd[pre + "rgbt_stem.proj.1.weight"]
    x = F.conv3d(video, stem, stride=tuple(stem.shape[2:])).flatten(2).transpose(1, 2)
    x = torch.cat([sd[pre + "cls_token"].expand(x.shape[0], -1, -1), x], 1) + sd[pre + "pos_embedding_helper.pos_embed"]
    width = x.shape[-1]
    if trunk + "pre_transformer_layer.0.weight" in sd:
        x = F.layer_norm(x, (width,), sd[trunk + "pre_transformer_layer.0.weight"],
                         sd[trunk + "pre_transformer_layer.0.bias"], 1e-6)
    x = _reference_blocks(sd, trunk, x, heads, None)
    x = F.layer_norm(x, (width,), sd["modality_heads.vision.0.weight"], sd["modality_heads.vision.0.bias"], 1e-6)
    return F.normalize(x[:, 0] @ sd["modality_heads.vision.2.weight"].T, dim=-1)


def _reference_blocks(sd, trunk, x, heads, mask):
    width = x.shape[-1]
    depth = len({k.split(".")[3] for k in sd if k.startswith(trunk + "blocks.")})
    for i in range(depth):
        p = f"{trunk}blocks.{i}."
        mha = torch.nn.MultiheadAttention(width, heads)
        mha.load_state_dict({k[len(p) + 5:]: v for k, v in sd.items() if k.startswith(p + "attn.")})
        h = F.layer_norm(x, (width,), sd[p + "norm_1.weight"], sd[p + "norm_1.bias"], 1e-6).transpose(0, 1)
        x = x + mha(h, h, h, need_weights=False, attn_mask=mask)[0].transpose(0, 1)
        h = F.layer_norm(x, (width,), sd[p + "norm_2.weight"], sd[p + "norm_2.bias"], 1e-6)
        x = x + F.linear(F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                         sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
    return x


def _reference_text(sd: dict[str, torch.Tensor], tokens: torch.Tensor, heads: int) -> torch.Tensor:
    pre, trunk = "modality_preprocessors.text.", "modality_trunks.text."
    x = sd[pre + "token_embedding.weight"][tokens] + sd[pre + "pos_embed"]
    x = _reference_blocks(sd, trunk, x, heads, sd[pre + "mask"])
    width = x.shape[-1]
    x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
    x = F.layer_norm(x, (width,), sd["modality_heads.text.proj.0.weight"], sd["modality_heads.text.proj.0.bias"], 1e-6)
    return F.normalize(x @ sd["modality_heads.text.proj.1.weight"].T, dim=-1)


@pytest.mark.parametrize("heads", [2, 4])
def test_anchor_matches_reference_forward_for_other_sizes(tmp_path: Path, heads: int) -> None:
    sd = fake_towers(seed=heads)
    model, config, _ = open_clip_from(tmp_path, sd, heads)
    vision_cfg, text_cfg = config["model_cfg"]["vision_cfg"], config["model_cfg"]["text_cfg"]
    assert (vision_cfg["width"], vision_cfg["layers"], vision_cfg["patch_size"], vision_cfg["image_size"]) == \
        (48, 3, 4, 12)
    assert vision_cfg["head_width"] == 48 // heads and text_cfg["heads"] == heads
    assert (text_cfg["width"], text_cfg["layers"], text_cfg["vocab_size"], text_cfg["context_length"]) == \
        (40, 2, 50, 9)
    images = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    tokens = torch.tensor([[49 % 50, 3, 0, 0, 0, 0, 0, 0, 0], [5, 7, 11, 49, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        ours_v = F.normalize(model.encode_image(images), dim=-1)
        ours_t = F.normalize(model.encode_text(tokens), dim=-1)
        ref_v, ref_t = _reference_vision(sd, images, heads), _reference_text(sd, tokens, heads)
    assert (ours_v - ref_v).abs().max() < 1e-5
    assert (ours_t - ref_t).abs().max() < 1e-5
    assert model.logit_scale.item() == pytest.approx(math.log(20.0))


def test_anchor_without_pre_ln_and_bad_heads(tmp_path: Path) -> None:
    sd = {k: v for k, v in fake_towers().items() if "pre_transformer_layer" not in k}
    model, config, _ = open_clip_from(tmp_path, sd, 4)
    assert config["model_cfg"]["vision_cfg"]["no_ln_pre"] is True
    images = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (F.normalize(model.encode_image(images), dim=-1) - _reference_vision(sd, images, 4)).abs().max() < 1e-5
    with pytest.raises(ConfigError, match="not divisible by num_heads 7"):
        open_clip_from(tmp_path, fake_towers(), 7, name="bad")


def test_anchor_rejects_bias_kv_and_non_causal_mask() -> None:
    sd = fake_towers()
    sd["modality_trunks.vision.blocks.0.attn.bias_k"] = torch.zeros(1, 1, 48)
    groups = split_by_modality(sd)
    with pytest.raises(ConfigError, match="bias_k"):
        imagebind_to_open_clip(groups["vision"], groups["text"], vision_heads=4, text_heads=4)
    sd = fake_towers()
    sd["modality_preprocessors.text.mask"] = torch.zeros(9, 9)
    groups = split_by_modality(sd)
    with pytest.raises(ConfigError, match="causal"):
        imagebind_to_open_clip(groups["vision"], groups["text"], vision_heads=4, text_heads=4)


def test_anchor_folder_records_licence(tmp_path: Path) -> None:
    _, _, folder = open_clip_from(tmp_path, fake_towers(), 4)
    assert read_open_clip_license(folder) == "CC-BY-NC-4.0"
    assert json.loads((folder / "open_clip_config.json").read_text())["bindcore"]["license"] == "CC-BY-NC-4.0"
    assert read_open_clip_license(tmp_path / "nowhere") is None


def test_resize_pos_embed_like_imagebind() -> None:
    pos = torch.randn(1 + 16, 8)
    assert resize_pos_embed_like_imagebind(pos, (4, 4)) is pos
    resized = resize_pos_embed_like_imagebind(pos, (5, 5))
    assert resized.shape == (26, 8) and torch.equal(resized[0], pos[0])
    grid = pos[1:].reshape(1, 4, 4, 8).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(5, 5), mode="bicubic", align_corners=False)
    assert torch.allclose(resized[1:], expected.permute(0, 2, 3, 1).reshape(25, 8), atol=1e-6)
    assert resize_pos_embed_like_imagebind(pos, (4, 6)).shape == (25, 8)
    with pytest.raises(ValueError, match="square"):
        resize_pos_embed_like_imagebind(torch.randn(1 + 15, 8), (4, 4))


# -- parity with the reference small model ----------------------------------------------------------------
@pytest.fixture(scope="module")
def small_anchor(tmp_path_factory: pytest.TempPathFactory):
    import open_clip

    root = parity_dir()
    heads = json.loads((SMALL / "config.json").read_text())["kwargs"]
    groups = split_by_modality(load_checkpoint(SMALL / "state_dict.pt"))
    config, state = imagebind_to_open_clip(groups["vision"], groups["text"], vision_heads=heads["vision_num_heads"],
                                           text_heads=heads["text_num_heads"])
    folder = write_open_clip_dir(tmp_path_factory.mktemp("anchor") / "anchor", config, state)
    return root, folder, open_clip.create_model(f"local-dir:{folder}").eval()


@pytest.mark.parity
def test_small_model_vision_and_text_parity(small_anchor) -> None:
    root, _, model = small_anchor
    meta = json.loads((root / "generation_meta.json").read_text())
    images = torch.from_numpy(np.stack([np.load(root / "preprocessed" / "vision" / f"{n}.npy")
                                        for n in meta["vision_order"]]))
    tokens = torch.from_numpy(np.load(root / "preprocessed" / "text_tokens.npy"))
    with torch.no_grad():
        vision = F.normalize(model.encode_image(images), dim=-1).numpy()
        text = F.normalize(model.encode_text(tokens), dim=-1).numpy()
    assert np.abs(vision - unit(np.load(SMALL / "outputs" / "main_vision_embedding.npy"))).max() <= 1e-4
    assert np.abs(text - unit(np.load(SMALL / "outputs" / "main_text_embedding.npy"))).max() <= 1e-4


@pytest.mark.parity
def test_small_model_vision_280_parity(small_anchor) -> None:
    import open_clip

    root, folder, model = small_anchor
    big = open_clip.create_model(f"local-dir:{folder}", force_image_size=280, load_weights=False).eval()
    state = dict(model.state_dict())
    state["visual.positional_embedding"] = resize_pos_embed_like_imagebind(state["visual.positional_embedding"],
                                                                           big.visual.grid_size)
    big.load_state_dict(state)
    with torch.no_grad():
        images = torch.from_numpy(np.load(root / "model_inputs" / "vision_280.npy"))
        ours = F.normalize(big.encode_image(images), dim=-1)
    expected = unit(np.load(SMALL / "outputs" / "vision280_vision_embedding.npy"))
    assert np.abs(ours.numpy() - expected).max() <= 1e-4
