"""Preprocessing: shapes, dtype, values, files, and clear errors for bad input."""

from __future__ import annotations

import bindcore
import numpy as np
import pytest
import torch
from hypothesis import given, settings

from {{package}} import TINY, {{Name}}Modality
from {{package}}.config import NUM_CHANNELS
from {{package}}.strategies import {{name}}_inputs


def test_resamples_every_recording_to_num_steps(tiny_model):
    levels = np.arange(1, NUM_CHANNELS + 1, dtype=np.float64)[:, None]
    recordings = [levels * np.ones((1, 500)), np.zeros((NUM_CHANNELS, 7)), [[1.0, 2.0]] * NUM_CHANNELS]
    x = tiny_model.preprocess(recordings)
    assert x.shape == (3, *tiny_model.input_shape) and x.dtype == torch.float32
    # resampling acts on time only: a constant channel stays that channel's constant
    torch.testing.assert_close(x[0], torch.from_numpy(levels).float().expand(tiny_model.input_shape))


def test_reads_the_npy_file_an_item_names(tiny_model, tmp_path):
    values = np.arange(NUM_CHANNELS * 90, dtype=np.float64).reshape(NUM_CHANNELS, 90)
    np.save(tmp_path / "recording.npy", values)
    path = tmp_path / "recording.npy"
    assert torch.equal(tiny_model.preprocess([path, str(path)]), tiny_model.preprocess([values, values]))


def test_value_scale_divides(tiny_model):
    scaled = {{Name}}Modality(**{**TINY, "value_scale": 4.0})
    recording = np.full((NUM_CHANNELS, 64), 8.0)
    assert torch.allclose(scaled.preprocess([recording]), tiny_model.preprocess([recording]) / 4)


@pytest.mark.parametrize(("item", "reason"), [
    (np.ones(5), "recording, got shape"),
    (np.ones((NUM_CHANNELS, 2, 2)), "recording, got shape"),
    (np.ones((NUM_CHANNELS + 1, 10)), "recording, got shape"),
    (np.ones((NUM_CHANNELS, 1)), "between 2"),
    (np.full((NUM_CHANNELS, 4), np.inf), "NaN or infinite"),
    ({"eeg": 1}, "not a 2-D array"),
    ("recording.csv", "unsupported file type"),
    ("missing.npy", "file not found"),
])
def test_bad_items_raise_input_error_naming_them(tiny_model, item, reason):
    with pytest.raises(bindcore.InputError, match=reason) as error:
        tiny_model.preprocess([np.ones((NUM_CHANNELS, 4)), item])
    assert error.value.item is item


def test_time_first_recordings_are_told_to_transpose(tiny_model):
    with pytest.raises(bindcore.InputError, match="transpose"):
        tiny_model.preprocess([np.ones((50, NUM_CHANNELS))])


def test_a_single_recording_is_not_a_batch(tiny_model):
    with pytest.raises(bindcore.InputError, match="wrap it in a list"):
        tiny_model.preprocess(np.ones((NUM_CHANNELS, 4)))


def test_config_errors_are_clear():
    with pytest.raises(bindcore.ConfigError, match="patch_size"):
        {{Name}}Modality(**{**TINY, "num_steps": 60})
    with pytest.raises(bindcore.ConfigError, match="valid keys"):
        {{Name}}Modality(steps=64)


SMALL = {{Name}}Modality(**TINY)


@settings(max_examples=30, deadline=None)
@given({{name}}_inputs())
def test_any_valid_recording_gives_a_finite_fixed_shape_tensor(item):
    x = SMALL.preprocess([item])
    assert x.shape == (1, *SMALL.input_shape) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, SMALL.preprocess([item]))
