"""Training: the binding trainer, checkpoints and cached anchor embeddings (recipes: :mod:`bindcore.recipe`; the
run's anchor, modalities and data: :mod:`bindcore.run_setup`)."""

from bindcore.train.trainer import Trainer, TrainResult, train

__all__ = ["TrainResult", "Trainer", "train"]
