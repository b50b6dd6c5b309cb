"""Preprocessing: shapes, dtype, values, files, and clear errors for bad input."""

from __future__ import annotations

import bindcore
import numpy as np
import pytest
import torch
from hypothesis import given, settings

from {{package}} import TINY, {{Name}}Modality
from {{package}}.strategies import {{name}}_inputs


def test_resizes_every_map_to_the_grid(tiny_model):
    maps = [np.ones((5, 7)), np.zeros((40, 3)), [[1.0, 2.0], [3.0, 4.0]]]
    x = tiny_model.preprocess(maps)
    assert x.shape == (3, *tiny_model.input_shape) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.ones(tiny_model.input_shape))  # a constant map stays constant


def test_reads_the_npy_file_an_item_names(tiny_model, tmp_path):
    values = np.arange(30, dtype=np.float64).reshape(5, 6)
    np.save(tmp_path / "map.npy", values)
    from_file = tiny_model.preprocess([tmp_path / "map.npy", str(tmp_path / "map.npy")])
    assert torch.equal(from_file, tiny_model.preprocess([values, values]))


def test_value_scale_divides(tiny_model):
    scaled = {{Name}}Modality(**{**TINY, "value_scale": 4.0})
    m = np.full((16, 16), 8.0)
    assert torch.allclose(scaled.preprocess([m]), tiny_model.preprocess([m]) / 4)


@pytest.mark.parametrize(("item", "reason"), [
    (np.ones(5), "2-D"),
    (np.ones((2, 2, 2)), "2-D"),
    (np.ones((1, 8)), "between 2"),
    (np.array([[1.0, np.inf], [0.0, 0.0]]), "NaN or infinite"),
    ({"map": 1}, "not a 2-D array"),
    ("map.png", "unsupported file type"),
    ("missing.npy", "file not found"),
])
def test_bad_items_raise_input_error_naming_them(tiny_model, item, reason):
    with pytest.raises(bindcore.InputError, match=reason) as error:
        tiny_model.preprocess([np.ones((4, 4)), item])
    assert error.value.item is item


def test_a_single_map_is_not_a_batch(tiny_model):
    with pytest.raises(bindcore.InputError, match="wrap it in a list"):
        tiny_model.preprocess(np.ones((4, 4)))


def test_config_errors_are_clear():
    with pytest.raises(bindcore.ConfigError, match="patch_size"):
        {{Name}}Modality(**{**TINY, "image_size": 10})
    with pytest.raises(bindcore.ConfigError, match="valid keys"):
        {{Name}}Modality(grid=16)


SMALL = {{Name}}Modality(**TINY)


@settings(max_examples=30, deadline=None)
@given({{name}}_inputs())
def test_any_valid_map_gives_a_finite_fixed_shape_tensor(item):
    x = SMALL.preprocess([item])
    assert x.shape == (1, *SMALL.input_shape) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, SMALL.preprocess([item]))
