"""Few-shot linear probe on frozen embeddings (ImageBind Fig. 3; CLIP's linear-probe protocol).

For ``k`` shots and a seed: ``k`` items per class are drawn from the training folds, a logistic regression
(scikit-learn, L-BFGS, ``C = 1``) is fitted on their embeddings, and top-1 is measured on every item of the test
fold. The draw depends on the seed and the benchmark's item list only, never on the model, so every model is
probed on the same items (the paper: "the same k samples are used for every method"). Mean and standard deviation
are over the seeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import Tensor

from bindcore.errors import ConfigError

TEST_FOLD = 1  # ESC-50's fold 1 (the paper's Fig. 3); without folds, item i is in fold i % 5 + 1
UNFOLDED_FOLDS = 5
PROBE_C = 1.0


def item_folds(num_items: int, folds: Sequence[int] | None) -> np.ndarray:
    """Each item's fold: the benchmark's, or ``i % 5 + 1`` for a benchmark without folds."""
    if folds is not None:
        return np.asarray(folds)
    return np.arange(num_items) % UNFOLDED_FOLDS + 1


def draw_shots(labels: Sequence[int], folds: np.ndarray, shots: int, seed: int,
               usable: np.ndarray) -> np.ndarray:
    """Indices of ``shots`` training items per class. Each class's training items are put in a seeded order
    (``numpy`` PCG64 from ``seed`` alone) and the first ``shots`` that ``usable`` marks are taken: an item a model
    could not embed (listed in the result's problems) is replaced by the next one, otherwise every model gets the
    same items."""
    labels_array = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in np.unique(labels_array):
        candidates = np.flatnonzero((labels_array == label) & (folds != TEST_FOLD))
        order = candidates[rng.permutation(len(candidates))]
        picked = order[usable[order]][:shots]
        if len(picked) < shots:
            raise ConfigError(f"class {int(label)} has {len(picked)} usable training item(s) outside the test fold "
                              f"{TEST_FOLD}; {shots} shots need more")
        chosen.extend(int(i) for i in picked)
    return np.asarray(sorted(chosen))


def few_shot_probe(embeddings: Tensor, rows: Sequence[int | None], labels: Sequence[int],
                   folds: Sequence[int] | None, shots: Sequence[int], seeds: int) -> dict[str, Any]:
    """Probe results for each ``k`` in ``shots`` over seeds ``0..seeds-1``. ``rows[i]`` is the embedding row of item
    ``i`` (``None``: not embedded)."""
    from sklearn.linear_model import LogisticRegression

    if seeds < 1:
        raise ConfigError(f"seeds must be at least 1, got {seeds}")
    features = embeddings.float().cpu().numpy()
    usable = np.asarray([row is not None for row in rows])
    row_of = np.asarray([-1 if row is None else row for row in rows])
    labels_array = np.asarray(labels)
    fold_array = item_folds(len(rows), folds)
    test = np.flatnonzero((fold_array == TEST_FOLD) & usable)
    if len(test) == 0:
        raise ConfigError(f"no embedded item is in the test fold {TEST_FOLD}: the few-shot probe has nothing to test")
    results: dict[str, Any] = {}
    for k in shots:
        accuracies, digests = [], []
        for seed in range(seeds):
            train = draw_shots(labels_array, fold_array, k, seed, usable)
            classifier = LogisticRegression(C=PROBE_C, max_iter=1000)
            classifier.fit(features[row_of[train]], labels_array[train])
            predicted = classifier.predict(features[row_of[test]])
            accuracies.append(float((predicted == labels_array[test]).mean()))
            digests.append(hashlib.sha256(train.astype(np.int64).tobytes()).hexdigest()[:16])
        results[str(k)] = {"top1_mean": float(np.mean(accuracies)), "top1_std": float(np.std(accuracies)),
                           "top1_per_seed": accuracies, "subset_digest": digests}
    return {"shots": results, "seeds": seeds, "test_fold": TEST_FOLD,
            "train_folds": sorted(int(f) for f in set(fold_array.tolist()) - {TEST_FOLD}),
            "num_test_items": len(test),
            "classifier": f"scikit-learn LogisticRegression (L-BFGS, C={PROBE_C}) on frozen embeddings"}
