"""The step plan: which modality pair each global step trains, and which items it sees.

Everything here is a pure function of (seed, modality, epoch, step), so a resumed run replays exactly
the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bindcore.seeds import seed_of


@dataclass(frozen=True)
class ModalityPlan:
    """Epoch arithmetic of one modality: ``replication`` scales an epoch relative to the dataset size."""

    name: str
    num_items: int
    batch_size: int
    replication: float
    epochs: float
    max_steps: int | None = None

    @property
    def samples_per_epoch(self) -> int:
        return max(self.batch_size, round(self.num_items * self.replication))

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.samples_per_epoch // self.batch_size)

    @property
    def total_steps(self) -> int:
        steps = max(1, math.ceil(self.epochs * self.steps_per_epoch))
        return min(steps, self.max_steps) if self.max_steps else steps

    def reading_layout(self) -> dict[str, int]:
        """What besides the recipe the sample order depends on (a resume compares it): nothing here, since every
        rank takes its share of one global batch; a streamed plan's order depends on its readers."""
        return {}

    def indices(self, seed: int, local_step: int) -> np.ndarray:
        """Dataset indices of this modality's ``local_step``-th batch (a pure function)."""
        epoch, position = divmod(local_step, self.steps_per_epoch)
        rng = np.random.default_rng(seed_of("epoch-order", seed, self.name, epoch))
        order = rng.permutation(np.arange(self.samples_per_epoch) % self.num_items)
        return order[position * self.batch_size:(position + 1) * self.batch_size]


class StepPlan:
    """Interleaves modalities into one run: ``proportional`` spreads each modality's steps evenly over the
    run (all finish together); ``round_robin`` cycles through the modalities that still have steps."""

    def __init__(self, plans: list[ModalityPlan], seed: int, schedule: str = "proportional"):
        if not plans:
            raise ValueError("a step plan needs at least one modality")
        self.plans = {p.name: p for p in plans}
        self.seed = seed
        self.order: list[tuple[str, int]] = []
        if schedule == "proportional":
            keys = [((k + 0.5) / p.total_steps, i, p.name, k)
                    for i, p in enumerate(plans) for k in range(p.total_steps)]
            self.order = [(name, k) for _, _, name, k in sorted(keys)]
        elif schedule == "round_robin":
            remaining = {p.name: 0 for p in plans}
            while remaining:
                for p in plans:
                    if p.name in remaining:
                        self.order.append((p.name, remaining[p.name]))
                        remaining[p.name] += 1
                        if remaining[p.name] >= p.total_steps:
                            del remaining[p.name]
        else:
            raise ValueError(f"unknown schedule {schedule!r} (use proportional or round_robin)")

    def __len__(self) -> int:
        return len(self.order)

    def step(self, global_step: int) -> tuple[str, int, np.ndarray]:
        """(modality, its local step, dataset indices) of ``global_step``."""
        name, local = self.order[global_step]
        return name, local, self.plans[name].indices(self.seed, local)


def batch_size_problem(name: str, batch_size: int, num_items: int, where: str) -> str | None:
    """Why a global ``batch_size`` cannot train on ``num_items`` items (``where``: what holds them), or None.

    A batch larger than the dataset repeats items (a repeat is a false negative for the contrastive loss) and
    preprocesses the repeats again at every step.
    """
    if batch_size <= num_items:
        return None
    return (f"modalities.{name}.train.batch_size {batch_size} is larger than the {num_items} items of {where}: "
            f"a batch would repeat items; set batch_size to at most {num_items} or add data")
