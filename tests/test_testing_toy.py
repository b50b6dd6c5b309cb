"""The kit's toy-renderer test helpers: nearest-centroid accuracy, shift-invariant map spectra, nuisance changes."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from bindcore.testing.toy import map_spectra, nearest_centroid_accuracy, nuisance_changes
from bindcore.toyworld import CONCEPTS, generate_scenes


def test_nearest_centroid_accuracy_separates_clusters_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(400) % len(CONCEPTS)
    centres = rng.normal(size=(len(CONCEPTS), 8)) * 10
    features = centres[labels] + rng.normal(size=(400, 8))
    assert nearest_centroid_accuracy(features[:200], labels[:200], features[200:], labels[200:]) == 1.0
    shuffled = rng.permutation(labels[200:])
    as_tensors = (torch.from_numpy(features[:200]), torch.from_numpy(labels[:200]), torch.from_numpy(features[200:]),
                  list(shuffled))
    assert nearest_centroid_accuracy(*as_tensors) < 0.3  # chance is 0.1


def test_map_spectra_ignore_where_the_object_is() -> None:
    maps = np.random.default_rng(1).random((2, 12, 12))
    moved = np.roll(maps, shift=(3, -5), axis=(1, 2))
    np.testing.assert_allclose(map_spectra(moved), map_spectra(maps), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(map_spectra(maps), axis=1), 1.0)
    assert not np.allclose(map_spectra(maps)[0], map_spectra(maps)[1])


def test_each_nuisance_change_moves_exactly_one_variable() -> None:
    for scene in generate_scenes(20, seed=0):
        changes = nuisance_changes(scene)
        assert sorted(k for change in changes for k in change) == ["brightness", "noise", "seed", "size", "x", "y"]
        for change in changes:
            changed = dataclasses.replace(scene, **change)
            fields = [f.name for f in dataclasses.fields(scene)]
            assert [n for n in fields if getattr(changed, n) != getattr(scene, n)] == list(change), (scene, change)
