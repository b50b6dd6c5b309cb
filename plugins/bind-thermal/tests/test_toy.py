"""The thermal toy renderer: format, determinism, nuisance, and concepts separable without learning."""

from __future__ import annotations

import dataclasses

import numpy as np
from bind_thermal import ThermalModality

from bindcore.testing.toy import map_spectra, nearest_centroid_accuracy, nuisance_changes
from bindcore.toyworld import generate_scenes


def test_renders_uint8_frames(tiny_model):
    frames = [tiny_model.render_toy(s) for s in generate_scenes(20, seed=0)]
    assert all(f.shape == (32, 32) and f.dtype == np.uint8 for f in frames)
    assert all(int(f.max()) - int(f.min()) > 60 for f in frames)  # the hot object stands out
    assert tiny_model.preprocess(frames).shape == (20, 1, 32, 32)


def test_deterministic_and_sized_by_config(tiny_model):
    scene = generate_scenes(1, seed=3)[0]
    np.testing.assert_array_equal(tiny_model.render_toy(scene), tiny_model.render_toy(scene))
    big = ThermalModality(image_size=48, patch_size=16, width=16, num_layers=1, num_heads=2, embed_dim=8)
    assert big.render_toy(scene).shape == (48, 48)


def test_nuisance_changes_the_rendering(tiny_model):
    scene = generate_scenes(1, seed=4)[0]
    base = tiny_model.render_toy(scene)
    for change in nuisance_changes(scene):
        assert not np.array_equal(tiny_model.render_toy(dataclasses.replace(scene, **change)), base), change


def test_brightness_scales_the_heat(tiny_model):
    scene = dataclasses.replace(generate_scenes(1, seed=5)[0], noise=0.0)
    dim = tiny_model.render_toy(dataclasses.replace(scene, brightness=0.6)).astype(float)
    bright = tiny_model.render_toy(dataclasses.replace(scene, brightness=1.0)).astype(float)
    assert bright.max() - np.median(bright) > dim.max() - np.median(dim)


def _spectra(model: ThermalModality, scenes) -> np.ndarray:
    """Position-invariant features of the preprocessed frames."""
    return map_spectra(model.preprocess([model.render_toy(s) for s in scenes]).numpy()[:, 0])


def test_concepts_separable_by_nearest_centroid(tiny_model):
    train, test = generate_scenes(200, seed=10), generate_scenes(200, seed=11)
    accuracy = nearest_centroid_accuracy(_spectra(tiny_model, train), [s.concept for s in train],
                                         _spectra(tiny_model, test), [s.concept for s in test])
    assert accuracy >= 0.8, f"nearest-centroid accuracy {accuracy:.2f} (chance 0.10)"
