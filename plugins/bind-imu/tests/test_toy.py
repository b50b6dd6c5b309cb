"""Toy-world rendering: deterministic, nuisance-sensitive, and concept-separable without learning."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from bind_imu import ImuModality, ImuRecording

from bindcore.testing.toy import nearest_centroid_accuracy
from bindcore.toyworld import generate_scenes


def test_render_is_deterministic_and_preprocessable(tiny_model: ImuModality) -> None:
    scene = generate_scenes(1, seed=3)[0]
    first, second = tiny_model.render_toy(scene), tiny_model.render_toy(scene)
    assert isinstance(first, ImuRecording) and first.layout == "channels_first"
    assert first.samples.shape == (6, 200) and first.sample_rate == 200.0
    assert np.array_equal(first.samples, second.samples)
    assert tiny_model.preprocess([first]).shape == (1, 2, 6, 200)


def test_render_follows_config_duration(tiny_options: dict) -> None:
    model = ImuModality(**{**tiny_options, "toy_seconds": 0.5, "default_sample_rate": 100.0})
    assert model.render_toy(generate_scenes(1, seed=0)[0]).samples.shape == (6, 50)


def test_every_nuisance_changes_the_render(tiny_model: ImuModality) -> None:
    scene = generate_scenes(1, seed=5)[0]
    base = tiny_model.render_toy(scene).samples
    for field, value in [("x", 0.41), ("y", 0.62), ("size", 0.3), ("brightness", 0.7), ("noise", 0.05),
                         ("seed", 123)]:
        changed = tiny_model.render_toy(dataclasses.replace(scene, **{field: value})).samples
        assert not np.allclose(changed, base), field


def test_concepts_separate_by_nearest_centroid(tiny_model: ImuModality) -> None:
    def features(seed: int) -> tuple[torch.Tensor, list[int]]:
        scenes = generate_scenes(200, seed=seed)
        x = tiny_model.preprocess([tiny_model.render_toy(s) for s in scenes])[:, 0].flatten(1)
        return x, [s.concept for s in scenes]

    accuracy = nearest_centroid_accuracy(*features(0), *features(1))
    assert accuracy >= 0.7, f"nearest-centroid accuracy {accuracy:.2f} (chance 0.10)"
