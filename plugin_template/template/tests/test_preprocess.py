"""Preprocessing: shapes, dtype, values, and clear errors for bad input."""

from __future__ import annotations

import bindcore
import numpy as np
import pytest
import torch
from hypothesis import given, settings

from {{package}} import {{Name}}Modality
from {{package}}.strategies import {{name}}_inputs


def test_resizes_every_map_to_the_grid(tiny_model):
    maps = [np.ones((5, 7)), np.zeros((40, 3)), [[1.0, 2.0], [3.0, 4.0]]]
    x = tiny_model.preprocess(maps)
    assert x.shape == (3, 1, 16, 16) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.ones(1, 16, 16))  # a constant map stays constant


def test_value_scale_divides():
    plain = {{Name}}Modality(width=16, num_layers=0, num_heads=1, embed_dim=4)
    scaled = {{Name}}Modality(width=16, num_layers=0, num_heads=1, embed_dim=4, value_scale=4.0)
    m = np.full((16, 16), 8.0)
    assert torch.allclose(scaled.preprocess([m]), plain.preprocess([m]) / 4)


@pytest.mark.parametrize(("item", "reason"), [
    (np.ones(5), "2-D"),
    (np.ones((2, 2, 2)), "2-D"),
    (np.ones((1, 8)), "between 2"),
    (np.array([[1.0, np.inf], [0.0, 0.0]]), "NaN or Inf"),
    ("map.png", "not a 2-D array"),
])
def test_bad_items_raise_input_error_naming_them(tiny_model, item, reason):
    with pytest.raises(bindcore.InputError, match=reason) as error:
        tiny_model.preprocess([np.ones((4, 4)), item])
    assert error.value.item is item


def test_config_errors_are_clear():
    with pytest.raises(bindcore.ConfigError, match="patch_size"):
        {{Name}}Modality(grid_size=10, patch_size=4)
    with pytest.raises(bindcore.ConfigError, match="valid keys"):
        {{Name}}Modality(grid=16)


SMALL = {{Name}}Modality(grid_size=16, patch_size=4, width=16, num_layers=0, num_heads=1, embed_dim=4)


@settings(max_examples=30, deadline=None)
@given({{name}}_inputs())
def test_any_valid_map_gives_a_finite_fixed_shape_tensor(item):
    x = SMALL.preprocess([item])
    assert x.shape == (1, 1, 16, 16) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, SMALL.preprocess([item]))
