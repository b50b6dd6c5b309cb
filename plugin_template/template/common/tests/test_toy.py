"""The toy renderer: deterministic, nuisance-sensitive, and concepts separable without any learning."""

from __future__ import annotations

import dataclasses

import numpy as np
from bindcore.toyworld import CONCEPTS, generate_scenes


def test_deterministic_and_accepted_by_preprocess(tiny_model):
    scenes = generate_scenes(10, seed=0)
    first = [tiny_model.render_toy(s) for s in scenes]
    assert all(np.array_equal(a, tiny_model.render_toy(s)) for a, s in zip(first, scenes, strict=True))
    assert tiny_model.preprocess(first).shape == (10, *tiny_model.input_shape)


def test_nuisance_changes_the_rendering(tiny_model):
    scene = generate_scenes(1, seed=4)[0]
    base = tiny_model.render_toy(scene)
    for change in ({"x": scene.x + 0.1}, {"y": scene.y - 0.1}, {"size": 0.3 if scene.size > 0.4 else 0.45},
                   {"brightness": 1.6 - scene.brightness}, {"noise": 0.1 - scene.noise}, {"seed": scene.seed + 1}):
        assert not np.array_equal(tiny_model.render_toy(dataclasses.replace(scene, **change)), base), change


def test_concepts_separable_by_nearest_centroid(tiny_model):
    def features(scenes):
        x = tiny_model.preprocess([tiny_model.render_toy(s) for s in scenes]).reshape(len(scenes), -1).numpy()
        x = x - x.mean(axis=1, keepdims=True)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    train, test = generate_scenes(200, seed=10), generate_scenes(200, seed=11)
    y_train, y_test = np.array([s.concept for s in train]), np.array([s.concept for s in test])
    f_train, f_test = features(train), features(test)
    centroids = np.stack([f_train[y_train == c].mean(axis=0) for c in range(len(CONCEPTS))])
    accuracy = (np.argmax(f_test @ centroids.T, axis=1) == y_test).mean()
    assert accuracy >= 0.6, accuracy  # chance is 0.1
