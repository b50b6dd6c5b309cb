"""Inputs that used to escape as raw exceptions, huge allocations or NaN embeddings: each is an InputError now."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from bind_imu import ImuConfig, ImuModality, ImuRecording
from bind_imu.preprocess import preprocess_items

from bindcore import InputError


def _recording(values: object, rate: float = 200.0) -> ImuRecording:
    return ImuRecording(values, rate, "channels_first", source="walk")


@pytest.mark.parametrize("rate", [1e-310, 5e-324, math.inf, math.nan, 0.0, -200.0])
def test_absurd_sample_rates_are_refused(tiny_config: ImuConfig, rate: float) -> None:
    with pytest.raises(InputError, match="sample_rate"):
        preprocess_items([_recording(np.zeros((6, 100)), rate)], tiny_config)


def test_tiny_rate_refusal_says_how_long_the_recording_would_be(tiny_config: ImuConfig) -> None:
    # 100 samples at 1e-310 Hz last longer than the universe; the resampled length is not even a float.
    with pytest.raises(InputError, match="resample"):
        preprocess_items([_recording(np.zeros((6, 100)), 1e-300)], tiny_config)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_tensors_are_accepted(tiny_config: ImuConfig, dtype: torch.dtype) -> None:
    values = torch.randn(6, 100, generator=torch.Generator().manual_seed(0))
    out = preprocess_items([_recording(values.to(dtype))], tiny_config)
    reference = preprocess_items([_recording(values.to(dtype).float())], tiny_config)
    assert torch.equal(out, reference)


def test_complex_tensor_is_refused(tiny_config: ImuConfig) -> None:
    with pytest.raises(InputError, match="complex"):
        preprocess_items([_recording(torch.zeros(6, 100, dtype=torch.complex64))], tiny_config)


def _csv(path: Path, seconds: list[float]) -> Path:
    rows = "".join(f"{t!r},0.1,0.2,9.8,0.0,0.0,0.0\n" for t in seconds)
    path.write_text("time,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n" + rows)
    return path


def test_csv_timestamp_far_in_the_future_is_refused_before_the_grid_is_built(tmp_path: Path,
                                                                             tiny_config: ImuConfig) -> None:
    # 20 rows at 100 Hz, then one at t = 1e12 s: the uniform grid would hold 1e14 steps (728 TiB).
    path = _csv(tmp_path / "walk.csv", [i * 0.01 for i in range(20)] + [1e12])
    with pytest.raises(InputError) as info:
        preprocess_items([path], tiny_config)
    message = str(info.value)
    assert "walk.csv" in message and "grid" in message and "21 rows" in message


def test_csv_gap_that_would_be_mostly_interpolation_is_refused(tmp_path: Path, tiny_config: ImuConfig) -> None:
    # 50 rows at 100 Hz with one 100 s gap: 10,000 grid steps, over 99% of them made up.
    path = _csv(tmp_path / "walk.csv", [i * 0.01 for i in range(25)] + [100 + i * 0.01 for i in range(25)])
    with pytest.raises(InputError, match="gap"):
        preprocess_items([path], tiny_config)


def test_amplitudes_that_overflow_the_encoder_are_refused(tiny_config: ImuConfig) -> None:
    values = np.random.default_rng(0).standard_normal((6, 100))
    values /= np.abs(values).max()  # peak 1
    model = ImuModality(tiny_config).eval()
    with torch.no_grad():  # the bound is far below where the encoder overflows: 1e6 still embeds finitely
        assert torch.isfinite(model.project(model.encode(preprocess_items([_recording(values * 1e6)],
                                                                          tiny_config)))).all()
    with pytest.raises(InputError, match="max_abs_value"):
        preprocess_items([_recording(values * 1e20)], tiny_config)


def test_large_amplitudes_pass_when_normalised_per_window(tiny_options: dict) -> None:
    config = ImuConfig(**tiny_options, normalization="per_window")
    values = np.random.default_rng(0).standard_normal((6, 100)) * 1e20
    assert torch.isfinite(preprocess_items([_recording(values)], config)).all()


def test_max_abs_value_is_configurable(tiny_options: dict) -> None:
    values = np.full((6, 100), 50.0)
    with pytest.raises(InputError, match="max_abs_value=10"):
        preprocess_items([_recording(values)], ImuConfig(**tiny_options, max_abs_value=10))


def test_npy_declaring_more_data_than_the_file_holds_is_refused_before_allocating(tmp_path: Path,
                                                                                  tiny_config: ImuConfig) -> None:
    path = tmp_path / "walk.npy"
    np.save(path, np.zeros((6, 10), np.float32))
    header = path.read_bytes()  # the same header length: 9 more characters in the shape, 9 fewer spaces
    path.write_bytes(header.replace(b"(6, 10), }", b"(6, 10000000000), }").replace(b" " * 9 + b"\n", b"\n", 1))
    with pytest.raises(InputError, match=r"walk\.npy.*the file holds 240 bytes"):
        preprocess_items([path], tiny_config)
