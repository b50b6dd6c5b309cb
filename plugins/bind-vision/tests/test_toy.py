"""Toy-world images: deterministic per scene, varied by nuisance, and concepts separable without learning."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from bindcore.testing.toy import nearest_centroid_accuracy
from bindcore.toyworld import generate_scenes


def test_render_toy_is_a_deterministic_uint8_rgb_image(vision_32) -> None:
    scene = generate_scenes(1, seed=0)[0]
    image = vision_32.render_toy(scene)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert np.array_equal(image, vision_32.render_toy(scene))
    assert vision_32.preprocess([image]).shape == (1, 3, 32, 32)


def test_nuisance_changes_the_rendering(vision_32) -> None:
    scene = generate_scenes(1, seed=1)[0]
    base = vision_32.render_toy(scene)
    for change in ({"x": 0.35}, {"y": 0.65}, {"size": 0.45}, {"brightness": 0.6}, {"noise": 0.1},
                   {"seed": scene.seed + 1}):
        other = dataclasses.replace(scene, **change)
        assert not np.array_equal(vision_32.render_toy(other), base), change


def test_concepts_are_separable_by_nearest_centroid(vision_32) -> None:
    # Feature: each channel's pixel values sorted, i.e. the colour distribution with position factored out
    # (objects move; a learned encoder handles that, a fixed centroid on raw pixels would not).
    scenes = generate_scenes(500, seed=7)
    x = vision_32.preprocess([vision_32.render_toy(s) for s in scenes])
    features = x.flatten(2).sort(dim=-1).values.flatten(1)
    labels = torch.tensor([s.concept for s in scenes])
    accuracy = nearest_centroid_accuracy(features[:350], labels[:350], features[350:], labels[350:])
    assert accuracy >= 0.6, f"nearest-centroid accuracy {accuracy:.2f} (chance 0.10)"
