"""The depth toy renderer: format, determinism, nuisance, and concepts separable without learning."""

from __future__ import annotations

import dataclasses

import numpy as np
from bind_depth import DepthModality

from bindcore.testing.toy import map_spectra, nearest_centroid_accuracy, nuisance_changes
from bindcore.toyworld import generate_scenes


def test_renders_float_metres_with_some_invalid_pixels(tiny_model):
    maps = [tiny_model.render_toy(s) for s in generate_scenes(20, seed=0)]
    assert all(d.shape == (32, 32) and d.dtype == np.float32 for d in maps)
    assert all(d.min() >= 0 and 0.2 <= d.max() < 10 for d in maps)
    assert any((d == 0).any() for d in maps)
    assert tiny_model.preprocess(maps).shape == (20, 1, 32, 32)


def test_deterministic_and_sized_by_config(tiny_model):
    scene = generate_scenes(1, seed=3)[0]
    np.testing.assert_array_equal(tiny_model.render_toy(scene), tiny_model.render_toy(scene))
    big = DepthModality(image_size=48, patch_size=16, width=16, num_layers=1, num_heads=2, embed_dim=8)
    assert big.render_toy(scene).shape == (48, 48)


def test_nuisance_changes_the_rendering(tiny_model):
    scene = generate_scenes(1, seed=4)[0]
    base = tiny_model.render_toy(scene)
    for change in nuisance_changes(scene):
        assert not np.array_equal(tiny_model.render_toy(dataclasses.replace(scene, **change)), base), change


def _spectra(model: DepthModality, scenes) -> np.ndarray:
    """Position-invariant features of the preprocessed maps."""
    return map_spectra(model.preprocess([model.render_toy(s) for s in scenes]).numpy()[:, 0])


def test_concepts_separable_by_nearest_centroid(tiny_model):
    train, test = generate_scenes(200, seed=10), generate_scenes(200, seed=11)
    accuracy = nearest_centroid_accuracy(_spectra(tiny_model, train), [s.concept for s in train],
                                         _spectra(tiny_model, test), [s.concept for s in test])
    assert accuracy >= 0.8, f"nearest-centroid accuracy {accuracy:.2f} (chance 0.10)"
