"""The depth toy renderer: format, determinism, nuisance, and concepts separable without learning."""

from __future__ import annotations

import dataclasses

import numpy as np
from bind_depth import DepthModality

from bindcore.toyworld import CONCEPTS, generate_scenes


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
    for change in ({"x": scene.x + 0.1}, {"y": scene.y - 0.1}, {"size": 0.3 if scene.size > 0.4 else 0.45},
                   {"noise": 0.1 - scene.noise}, {"seed": scene.seed + 1}, {"brightness": 1.6 - scene.brightness}):
        assert not np.array_equal(tiny_model.render_toy(dataclasses.replace(scene, **change)), base), change


def _spectra(model: DepthModality, scenes) -> np.ndarray:
    """Position-invariant features: FFT magnitude of the preprocessed map."""
    x = model.preprocess([model.render_toy(s) for s in scenes]).numpy()[:, 0]
    f = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))).reshape(len(scenes), -1)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def test_concepts_separable_by_nearest_centroid(tiny_model):
    train, test = generate_scenes(200, seed=10), generate_scenes(200, seed=11)
    f_train, f_test = _spectra(tiny_model, train), _spectra(tiny_model, test)
    y_train = np.array([s.concept for s in train])
    y_test = np.array([s.concept for s in test])
    centroids = np.stack([f_train[y_train == c].mean(0) for c in range(len(CONCEPTS))])
    predicted = np.argmin(((f_test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == y_test).mean() >= 0.8  # chance is 0.1
