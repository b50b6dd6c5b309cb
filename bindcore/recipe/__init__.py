"""Training recipes: the schema of a recipe file (:mod:`~bindcore.recipe.schema`) and its two-stage validation
(:mod:`~bindcore.recipe.load`)."""

from bindcore.recipe.load import apply_override, load_recipe, load_run_recipe, validate_recipe
from bindcore.recipe.schema import (
    AnchorPretrain,
    Augmentation,
    DataSettings,
    EvalSettings,
    ImageCrop,
    ModalityData,
    ModalityRecipe,
    RandAugment,
    Recipe,
    RecipeAnchor,
    RunSettings,
    ToyData,
    TrainSettings,
    ValidatedRecipe,
)

__all__ = ["AnchorPretrain", "Augmentation", "DataSettings", "EvalSettings", "ImageCrop", "ModalityData",
           "ModalityRecipe", "RandAugment", "Recipe", "RecipeAnchor", "RunSettings", "ToyData", "TrainSettings",
           "ValidatedRecipe", "apply_override", "load_recipe", "load_run_recipe", "validate_recipe"]
