"""End to end: `bindcore convert imagebind` on the small reference model, then every modality loaded with
``bindcore.load_modality`` must reproduce the reference embeddings (L2-normalised, max abs ≤ 1e-4)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import bindcore
import bindcore.io
from bindcore.convert import convert_imagebind
from bindcore.errors import ConfigError
from bindcore.testing.parity import parity_vectors_path

PARITY = parity_vectors_path()
SMALL = PARITY / "small_model"
TOLERANCE = 1e-4


def small_heads() -> dict[str, int]:
    kwargs = json.loads((SMALL / "config.json").read_text())["kwargs"]
    return {m: kwargs[f"{m}_num_heads"] for m in ("vision", "text", "audio", "depth", "thermal", "imu")}


def unit(array: np.ndarray) -> np.ndarray:
    return array / np.linalg.norm(array, axis=-1, keepdims=True)


def model_input(name: str) -> torch.Tensor:
    meta = json.loads((PARITY / "generation_meta.json").read_text())
    if name == "vision":
        return torch.from_numpy(np.stack([np.load(PARITY / "preprocessed" / "vision" / f"{n}.npy")
                                          for n in meta["vision_order"]]))
    if name == "audio":
        return torch.from_numpy(np.stack([np.load(PARITY / "preprocessed" / "audio" / f"{n}.npy")
                                          for n in meta["audio_order"]]))
    if name == "text":
        return torch.from_numpy(np.load(PARITY / "preprocessed" / "text_tokens.npy"))
    if name == "imu":  # the reference's (N, 6, T); bind-imu takes one window per item as (N, 1, 6, T)
        return torch.from_numpy(np.load(PARITY / "model_inputs" / "imu.npy"))[:, None]
    return torch.from_numpy(np.load(PARITY / "model_inputs" / f"{name}.npy"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory):
    if not (SMALL / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {PARITY} (set BINDCORE_PARITY_DIR)")
    out = tmp_path_factory.mktemp("converted") / "imagebind_small"
    report = convert_imagebind(SMALL / "state_dict.pt", out, heads=small_heads())
    return out, report


@pytest.mark.parity
@pytest.mark.parametrize("name", ["vision", "text", "audio", "depth", "thermal", "imu"])
def test_converted_modality_reproduces_reference_embeddings(converted, name: str) -> None:
    out, report = converted
    if name in report.skipped:
        pytest.skip(f"{name} not converted: {report.skipped[name]}")
    meta = json.loads((out / name / "bindcore.json").read_text())
    assert meta["license"] == "CC-BY-NC-4.0" and meta["modality"] == name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = bindcore.load_modality(out / name).eval()
    with torch.no_grad():
        embeddings = module(module.to_model_input(model_input(name))).float().numpy()
    expected = unit(np.load(SMALL / "outputs" / f"main_{name}_embedding.npy"))
    assert embeddings.shape == expected.shape
    assert np.abs(embeddings - expected).max() <= TOLERANCE


@pytest.mark.parity
def test_conversion_report_and_anchor_folder(converted) -> None:
    import open_clip

    out, report = converted
    summary = json.loads((out / "conversion.json").read_text())
    assert summary["license"] == "CC-BY-NC-4.0" and "non-commercial" in summary["license_note"]
    assert summary["num_heads"] == small_heads()
    assert set(summary["written"]) == set(report.written) and "anchor" in report.written
    for name in ("audio", "depth", "thermal", "imu"):  # plugins shipped with bindcore; all implement conversion
        if name in report.skipped:
            assert "no installed plugin" in report.skipped[name]
    model = open_clip.create_model(f"local-dir:{out / 'anchor'}")
    assert model.visual.conv1.weight.shape == (64, 3, 14, 14)


@pytest.mark.parity
def test_loading_converted_weights_warns_non_commercial(converted, monkeypatch) -> None:
    out, report = converted
    name = next(n for n in report.written if n != "anchor")
    monkeypatch.setattr(bindcore.io, "_warned_licenses", set())
    with pytest.warns(UserWarning, match="CC-BY-NC-4.0.*non-commercial"):
        bindcore.load_modality(out / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per licence, not on every load
        bindcore.load_modality(out / name)


@pytest.mark.parity
def test_only_requested_modalities_are_converted_and_output_is_protected(tmp_path: Path) -> None:
    if not (SMALL / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {PARITY}")
    if "imu" not in bindcore.list_modalities():
        pytest.skip("bind-imu is not installed")
    out = tmp_path / "imu_only"
    report = convert_imagebind(SMALL / "state_dict.pt", out, heads=small_heads(), modalities=["imu"])
    assert set(report.written) == {"imu"} and sorted(p.name for p in out.iterdir()) == ["conversion.json", "imu"]
    with pytest.raises(ConfigError, match="not empty"):
        convert_imagebind(SMALL / "state_dict.pt", out, heads=small_heads(), modalities=["imu"])
    with pytest.raises(ConfigError, match="no 'smell' entries"):
        convert_imagebind(SMALL / "state_dict.pt", tmp_path / "x", modalities=["smell"])


@pytest.mark.parity
def test_cli_convert(tmp_path: Path) -> None:
    if not (SMALL / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {PARITY}")
    from bindcore.cli import cli

    heads = [arg for name, n in small_heads().items() for arg in ("--heads", f"{name}={n}")]
    result = CliRunner().invoke(cli, ["convert", "imagebind", str(SMALL / "state_dict.pt"), str(tmp_path / "o"),
                                      "--modality", "vision", "--modality", "text", *heads, "--json"],
                                catch_exceptions=False)
    if result.exit_code != 0:
        assert "plugin" in result.output  # vision/text plugins missing: a clear error, not a traceback
        return
    report = json.loads(result.output)
    assert "anchor" in report["written"]
    bad = CliRunner().invoke(cli, ["convert", "imagebind", str(SMALL / "state_dict.pt"), str(tmp_path / "p"),
                                   "--heads", "vision:4"])
    assert bad.exit_code != 0 and "MODALITY=N" in bad.output


@pytest.mark.parity
def test_converted_video_reproduces_reference_embeddings(converted) -> None:
    out, report = converted
    if "video" not in report.written:
        pytest.skip("no installed plugin provides 'video' (bind-vision's video modality)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = bindcore.load_modality(out / "video")
    meta = json.loads((PARITY / "generation_meta.json").read_text())
    paths = [str(PARITY / "fixtures" / "video" / f"{name}.avi") for name in meta["video_order"]]
    expected = unit(np.load(SMALL / "outputs" / "video_vision_embedding.npy"))
    assert np.abs(module.embed(paths).float().numpy() - expected).max() <= TOLERANCE


@pytest.mark.parity
def test_moved_conversion_output_still_finds_its_anchor(tmp_path: Path) -> None:
    import shutil

    from bindcore.inference import BindModel

    if not (SMALL / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {PARITY}")
    if "vision" not in bindcore.list_modalities():
        pytest.skip("bind-vision is not installed")
    first = tmp_path / "first"
    convert_imagebind(SMALL / "state_dict.pt", first, heads=small_heads(), modalities=["vision"])
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BindModel.load(moved, ["vision"])
    with torch.no_grad():
        module = model["vision"]
        ours = module(module.to_model_input(model_input("vision"))).numpy()
    assert np.abs(ours - unit(np.load(SMALL / "outputs" / "main_vision_embedding.npy"))).max() <= TOLERANCE


@pytest.mark.parity
def test_converted_at_280_px_reproduces_the_reference_interpolation(tmp_path: Path) -> None:
    if not (SMALL / "state_dict.pt").is_file():
        pytest.skip(f"ImageBind parity vectors not found at {PARITY}")
    if "vision" not in bindcore.list_modalities():
        pytest.skip("bind-vision is not installed")
    out = tmp_path / "at280"
    convert_imagebind(SMALL / "state_dict.pt", out, heads=small_heads(), modalities=["vision"], image_size=280)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = bindcore.load_modality(out / "vision")
    with torch.no_grad():
        ours = module(module.to_model_input(torch.from_numpy(np.load(PARITY / "model_inputs" / "vision_280.npy"))))
    expected = unit(np.load(SMALL / "outputs" / "vision280_vision_embedding.npy"))
    assert np.abs(ours.numpy() - expected).max() <= TOLERANCE
    with pytest.raises(ConfigError, match="multiple of the patch size 14"):
        convert_imagebind(SMALL / "state_dict.pt", tmp_path / "bad", heads=small_heads(), modalities=["vision"],
                          image_size=250)
