"""Helpers for a plugin's own toy-renderer tests (beyond the kit's ``check_render_toy``): is the concept
recoverable from the rendering without any learning, and does every nuisance variable change it?"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bindcore.toyworld import CONCEPTS, Scene


def nearest_centroid_accuracy(train_features: Any, train_labels: Any, test_features: Any, test_labels: Any) -> float:
    """Fraction of test rows whose nearest (Euclidean) per-concept training centroid is their own concept.

    Features are ``(N, F)`` arrays or tensors, labels concept indices; chance is ``1 / len(CONCEPTS)``.
    """
    train_x = torch.as_tensor(train_features, dtype=torch.float32).flatten(1)
    test_x = torch.as_tensor(test_features, dtype=torch.float32).flatten(1)
    train_y, test_y = torch.as_tensor(train_labels), torch.as_tensor(test_labels)
    centroids = torch.stack([train_x[train_y == c].mean(0) for c in range(len(CONCEPTS))])
    predicted = torch.cdist(test_x, centroids).argmin(1)
    return float((predicted == test_y).double().mean())


def map_spectra(maps: Any) -> np.ndarray:
    """Position-invariant features of single-channel maps ``(N, H, W)``: unit-norm FFT magnitude of each
    mean-removed map (a moving object changes the phase, not the magnitude)."""
    x = np.asarray(maps, dtype=np.float64)
    f = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))).reshape(len(x), -1)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def nuisance_changes(scene: Scene) -> list[dict[str, Any]]:
    """One ``dataclasses.replace`` change per nuisance variable of ``scene`` (x, y, size, noise, seed,
    brightness), each a visible step that stays in the toy world's ranges."""
    return [{"x": scene.x + 0.1}, {"y": scene.y - 0.1}, {"size": 0.3 if scene.size > 0.4 else 0.45},
            {"noise": 0.1 - scene.noise}, {"seed": scene.seed + 1}, {"brightness": 1.6 - scene.brightness}]
