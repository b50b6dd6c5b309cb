"""Training: recipes, the binding trainer, checkpoints and cached anchor embeddings."""

from bindcore.train.recipe import Recipe, TrainSettings, ValidatedRecipe, load_recipe, validate_recipe
from bindcore.train.trainer import Trainer, TrainResult, train

__all__ = ["Recipe", "TrainResult", "TrainSettings", "Trainer", "ValidatedRecipe", "load_recipe", "train",
           "validate_recipe"]
