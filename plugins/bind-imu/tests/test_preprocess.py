"""Preprocessing: accepted inputs, windowing, padding, normalisation, and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bind_imu import CHANNELS, ImuConfig, ImuRecording
from bind_imu import preprocess as preprocess_module
from bind_imu.preprocess import pad, preprocess_items, resample, window_starts

from bindcore import InputError


def _signal(steps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((6, steps)).astype(np.float32)


def _write_csv(path: Path, header: list[str], rows: np.ndarray) -> Path:
    lines = [",".join(header)] + [",".join(f"{v:.9g}" for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_output_shape_dtype_and_identity_at_target_rate(tiny_config: ImuConfig) -> None:
    samples = _signal(200)
    out = preprocess_items([ImuRecording(samples, 200.0)], tiny_config)
    assert out.shape == (1, 2, 6, 200) and out.dtype == torch.float32
    # a recording of exactly one window at the target rate passes through untouched (no resampling)
    assert torch.equal(out[0, 0], torch.from_numpy(samples)) and torch.equal(out[0, 1], out[0, 0])


def test_channels_last_layout_equals_channels_first(tiny_config: ImuConfig) -> None:
    samples = _signal(300)
    first = preprocess_items([ImuRecording(samples, 150.0, "channels_first")], tiny_config)
    last = preprocess_items([ImuRecording(samples.T.copy(), 150.0, "channels_last")], tiny_config)
    assert torch.equal(first, last)


def test_torch_tensor_samples_accepted(tiny_config: ImuConfig) -> None:
    samples = _signal(250)
    out = preprocess_items([ImuRecording(torch.from_numpy(samples), 200.0)], tiny_config)
    assert torch.equal(out, preprocess_items([ImuRecording(samples, 200.0)], tiny_config))


def test_resampling_changes_length_by_rate() -> None:
    samples = _signal(100).astype(np.float64)
    assert resample(samples, 100.0, 400.0).shape == (6, 400)
    assert resample(samples, 400.0, 100.0).shape == (6, 25)
    assert resample(samples, 200.0, 200.0) is samples


def test_long_recording_gives_evenly_spaced_windows(tiny_config: ImuConfig) -> None:
    ramp = np.tile(np.arange(500, dtype=np.float32), (6, 1))
    out = preprocess_items([ImuRecording(ramp, 200.0)], tiny_config.model_copy(update={"num_windows": 3}))
    assert out[0, :, 0, 0].tolist() == [0.0, 150.0, 300.0]  # first at the start, last ends at the end
    assert out[0, 2, 0, -1].item() == 499.0
    assert window_starts(500, 200, 1) == [150]  # a single window is centred
    assert window_starts(100, 200, 3) == [0, 0, 0]


@pytest.mark.parametrize(("mode", "tail"), [("edge", 49.0), ("zeros", 0.0), ("repeat", 19.0)])
def test_short_recordings_are_padded_at_the_end(mode: str, tail: float) -> None:
    ramp = np.tile(np.arange(50, dtype=np.float64), (6, 1))
    padded = pad(ramp, 120, mode)
    assert padded.shape == (6, 120)
    assert np.array_equal(padded[:, :50], ramp) and padded[0, -1] == tail


def test_normalization_modes(tiny_config: ImuConfig) -> None:
    samples = _signal(200) * 3 + np.arange(6, dtype=np.float32)[:, None]
    recording = ImuRecording(samples, 200.0)
    per_window = preprocess_items([recording], tiny_config.model_copy(update={"normalization": "per_window"}))
    assert torch.allclose(per_window.mean(-1), torch.zeros(1, 2, 6), atol=1e-5)
    assert torch.allclose(per_window.std(-1, unbiased=False), torch.ones(1, 2, 6), atol=1e-4)
    fixed_cfg = tiny_config.model_copy(update={"normalization": "fixed", "channel_mean": (1, 2, 3, 4, 5, 6),
                                               "channel_std": (2, 2, 2, 4, 4, 4)})
    fixed = preprocess_items([recording], fixed_cfg)
    expected = (samples - np.arange(1, 7)[:, None]) / np.array([2, 2, 2, 4, 4, 4])[:, None]
    assert np.allclose(fixed[0, 0].numpy(), expected, atol=1e-5)
    constant = preprocess_items([ImuRecording(np.ones((6, 200)), 200.0)],
                                tiny_config.model_copy(update={"normalization": "per_window"}))
    assert torch.equal(constant, torch.zeros_like(constant))  # zero variance → zeros, not NaN


def test_npy_file_convention(tmp_path: Path, tiny_config: ImuConfig) -> None:
    samples = _signal(400)
    np.save(tmp_path / "rec.npy", samples)
    from_file = preprocess_items([str(tmp_path / "rec.npy")], tiny_config)
    # .npy = channels-first at config.default_sample_rate
    assert torch.equal(from_file, preprocess_items([ImuRecording(samples, 200.0)], tiny_config))
    explicit = ImuRecording.from_file(tmp_path / "rec.npy", sample_rate=100.0)
    assert explicit.sample_rate == 100.0 and explicit.layout == "channels_first"


def test_csv_with_aliases_units_and_extra_columns(tmp_path: Path, tiny_config: ImuConfig) -> None:
    samples = _signal(300)
    header = ["AX [m/s^2]", "ay", "Accel_Z", "gyr_x", "gyroscope_y", " GZ (rad/s)"]
    path = _write_csv(tmp_path / "rec.csv", [*header, "temperature"], np.c_[samples.T, np.zeros(300)])
    out = preprocess_items([path], tiny_config)
    assert torch.allclose(out, preprocess_items([ImuRecording(samples, 200.0)], tiny_config), atol=1e-6)


def test_csv_semicolon_delimiter(tmp_path: Path, tiny_config: ImuConfig) -> None:
    samples = _signal(200)
    path = tmp_path / "rec.csv"
    path.write_text(";".join(CHANNELS) + "\n" + "\n".join(";".join(map(str, r)) for r in samples.T) + "\n")
    assert torch.allclose(preprocess_items([path], tiny_config)[0, 0], torch.from_numpy(samples), atol=1e-6)


def test_csv_timestamps_set_the_rate(tmp_path: Path) -> None:
    samples = _signal(100)
    stamps = np.arange(100) * 20.0  # milliseconds → 50 Hz
    recording = ImuRecording.from_file(_write_csv(tmp_path / "r.csv", ["timestamp_ms", *CHANNELS],
                                                  np.c_[stamps, samples.T]))
    assert recording.sample_rate == pytest.approx(50.0) and recording.samples.shape == (100, 6)


def test_csv_irregular_timestamps_are_interpolated(tmp_path: Path) -> None:
    seconds = np.cumsum(np.r_[0.0, np.full(60, 0.01), 0.02, np.full(38, 0.01)])  # one dropped sample
    line = np.tile(seconds * 10, (6, 1))  # linear in time: interpolation is exact
    recording = ImuRecording.from_file(_write_csv(tmp_path / "r.csv", ["time", *CHANNELS], np.c_[seconds, line.T]))
    assert recording.sample_rate == pytest.approx(100.0)
    assert recording.samples.shape == (101, 6)
    assert np.allclose(recording.samples[:, 0], np.arange(101) * 0.1)


# -- bad input ---------------------------------------------------------------------------------------------
def _error(inputs: list[object], config: ImuConfig) -> InputError:
    with pytest.raises(InputError) as info:
        preprocess_items(inputs, config)
    return info.value


def test_csv_missing_column_names_file_and_column(tmp_path: Path, tiny_config: ImuConfig) -> None:
    path = _write_csv(tmp_path / "walk.csv", ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_z"], _signal(50)[:5].T)
    error = _error([path], tiny_config)
    assert "walk.csv" in str(error) and "'gyro_y'" in str(error) and "gyroscope_y" in str(error)


@pytest.mark.parametrize("content", ["", "acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n", "\n\n"])
def test_empty_csv(tmp_path: Path, tiny_config: ImuConfig, content: str) -> None:
    (tmp_path / "empty.csv").write_text(content)
    error = _error([tmp_path / "empty.csv"], tiny_config)
    assert "empty.csv" in str(error) and ("empty" in error.reason or "no data rows" in error.reason)


def test_csv_non_numeric_row_is_named(tmp_path: Path, tiny_config: ImuConfig) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(",".join(CHANNELS) + "\n1,2,3,4,5,6\n1,2,x,4,5,6\n")
    assert "line 3" in _error([path], tiny_config).reason


def test_csv_non_increasing_timestamps(tmp_path: Path, tiny_config: ImuConfig) -> None:
    path = _write_csv(tmp_path / "t.csv", ["t", *CHANNELS], np.c_[[0.0, 0.1, 0.1, 0.2], np.ones((4, 6))])
    assert "increase" in _error([path], tiny_config).reason


def test_csv_nan_value_is_rejected(tmp_path: Path, tiny_config: ImuConfig) -> None:
    rows = _signal(50).T.copy()
    rows[7, 4] = np.nan
    error = _error([_write_csv(tmp_path / "nan.csv", list(CHANNELS), rows)], tiny_config)
    assert "nan.csv" in str(error) and "gyro_y (1)" in error.reason


def test_empty_and_corrupt_npy(tmp_path: Path, tiny_config: ImuConfig) -> None:
    (tmp_path / "empty.npy").write_bytes(b"")
    assert "empty" in _error([tmp_path / "empty.npy"], tiny_config).reason
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    assert "cannot read" in _error([tmp_path / "junk.npy"], tiny_config).reason


def test_missing_file_and_unknown_extension(tmp_path: Path, tiny_config: ImuConfig) -> None:
    assert "not found" in _error([tmp_path / "nope.npy"], tiny_config).reason
    (tmp_path / "rec.txt").write_text("1")
    assert "unsupported IMU file type" in _error([tmp_path / "rec.txt"], tiny_config).reason


def test_npy_channels_last_gets_a_layout_hint(tmp_path: Path, tiny_config: ImuConfig) -> None:
    np.save(tmp_path / "tc.npy", _signal(100).T)
    error = _error([tmp_path / "tc.npy"], tiny_config)
    assert "tc.npy" in str(error) and "channels_last" in error.reason


@pytest.mark.parametrize("dtype", [np.bool_, np.complex64, np.str_, object])
def test_wrong_dtype(tiny_config: ImuConfig, dtype: type) -> None:
    samples = np.ones((6, 50)).astype(dtype)
    assert "dtype" in _error([ImuRecording(samples, 200.0)], tiny_config).reason


def test_integer_samples_are_accepted(tiny_config: ImuConfig) -> None:
    out = preprocess_items([ImuRecording(np.ones((6, 200), dtype=np.int16), 200.0)], tiny_config)
    assert torch.equal(out, torch.ones(1, 2, 6, 200))


@pytest.mark.parametrize("shape", [(5, 100), (7, 100), (6,), (1, 6, 100)])
def test_wrong_channel_count_or_rank(tiny_config: ImuConfig, shape: tuple[int, ...]) -> None:
    error = _error([ImuRecording(np.zeros(shape), 200.0)], tiny_config)
    assert "ImuRecording" in str(error) and ("channels" in error.reason or "2-D" in error.reason)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tiny_config: ImuConfig, bad: float) -> None:
    samples = _signal(100).astype(np.float64)
    samples[2, 10] = bad
    assert "acc_z (1)" in _error([ImuRecording(samples, 200.0)], tiny_config).reason


def test_two_step_trace_is_rejected(tiny_config: ImuConfig) -> None:
    assert "min_samples" in _error([ImuRecording(np.zeros((6, 2)), 200.0)], tiny_config).reason


@pytest.mark.parametrize("rate", [0.0, -10.0, float("nan"), float("inf"), True, "200"])
def test_bad_sample_rate(tiny_config: ImuConfig, rate: object) -> None:
    assert "sample_rate" in _error([ImuRecording(np.zeros((6, 50)), rate)], tiny_config).reason  # type: ignore[arg-type]


def test_sample_rate_in_wrong_units_is_rejected_before_resampling(tiny_config: ImuConfig) -> None:
    # 10 000 samples declared at 1e-4 Hz would resample to 4e10 steps at 400 Hz (hundreds of GB): refused before
    # any allocation, naming the rate
    error = _error([ImuRecording(_signal(10_000), 1e-4)], tiny_config)
    assert "sample_rate=0.0001 Hz" in error.reason and "in Hz" in error.fix


def test_longest_accepted_recording_still_resamples(tiny_config: ImuConfig, monkeypatch) -> None:
    monkeypatch.setattr(preprocess_module, "MAX_RESAMPLED_STEPS", 4000)
    ok = ImuRecording(_signal(1000), tiny_config.target_sample_rate / 4)  # exactly 4000 steps
    assert preprocess_items([ok], tiny_config).shape[0] == 1
    too_long = ImuRecording(_signal(1001), tiny_config.target_sample_rate / 4)
    assert "4,004 steps" in _error([too_long], tiny_config).reason


def test_bad_layout_bare_array_and_unknown_type(tiny_config: ImuConfig) -> None:
    assert "layout" in _error([ImuRecording(np.zeros((6, 50)), 200.0, "rows")], tiny_config).reason  # type: ignore[arg-type]
    assert "ImuRecording(" in str(_error([np.zeros((6, 50))], tiny_config))
    assert "unsupported" in _error([42], tiny_config).reason


def test_float32_overflow_is_rejected(tiny_config: ImuConfig) -> None:
    assert "overflow" in _error([ImuRecording(np.full((6, 200), 1e300), 200.0)], tiny_config).reason


def test_error_names_the_bad_item_in_a_batch(tmp_path: Path, tiny_config: ImuConfig) -> None:
    good = ImuRecording(_signal(100), 200.0)
    bad = ImuRecording(np.zeros((6, 100)), -1.0, source="left_wrist.csv")
    assert "left_wrist.csv" in str(_error([good, bad], tiny_config))


def test_empty_batch_and_single_item(tiny_config: ImuConfig) -> None:
    assert preprocess_items([], tiny_config).shape == (0, 2, 6, 200)
    assert preprocess_items(ImuRecording(_signal(100), 200.0), tiny_config).shape == (1, 2, 6, 200)  # type: ignore[arg-type]
