"""Modality-agnostic neural building blocks shared by plugins."""

from bindcore.nn.encoders import PatchEncoder, ProjectionHead, fold_clips, mean_of_clips, patch_grid
from bindcore.nn.transformer import Attention, Block, Transformer

__all__ = [
    "Attention",
    "Block",
    "PatchEncoder",
    "ProjectionHead",
    "Transformer",
    "fold_clips",
    "mean_of_clips",
    "patch_grid",
]
