"""Paired data for binding: the toy world, JSONL/CSV manifests, WebDataset shards, and the step planner."""

from bindcore.data.plan import ModalityPlan, StepPlan
from bindcore.data.sources import ManifestSource, PairedSource, ShardSource, ToySource, read_manifest

__all__ = ["ManifestSource", "ModalityPlan", "PairedSource", "ShardSource", "StepPlan", "ToySource",
           "read_manifest"]
