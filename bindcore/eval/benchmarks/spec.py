"""What a benchmark is: a reader of a dataset's published layout that yields raw inputs, labels or pairs, and the
paper's figure beside it. Plugins provide benchmarks through the ``register_benchmarks`` hook (the core's own
``labelled`` and ``pairs`` are registered the same way); :mod:`bindcore.eval.benchmarks.run` embeds and scores.

A reader never drops an item silently: a file the metadata lists but that is missing or unreadable goes into
``problems`` (and is counted in the result); items that fail preprocessing are added there by the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Task = Literal["zero_shot", "retrieval", "multilabel"]


class NoOptions(BaseModel):
    """Options of a benchmark that takes none (``-o key value`` on the command line is refused)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Problem:
    """One listed item that could not be used: where it comes from and why."""

    source: str  # e.g. "meta/esc50.csv line 12: audio/1-100032-A-0.wav"
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason}


@dataclass
class Classification:
    """Zero-shot classification (``task="zero_shot"``: one label per item) or tagging (``"multilabel"``: a list of
    labels per item, scored by mAP).

    ``class_names[c]`` holds one or more names for class ``c``; with several, the class's score is the maximum
    cosine over its names (SUN RGB-D's "other" = max over 18 names, LLVIP's name lists). ``folds``, when set, gives
    each item's fold: metrics are computed per fold and averaged (ESC-50's 5-fold protocol).
    """

    items: list[Any]  # raw inputs the modality's ``preprocess`` accepts (paths, plugin input objects)
    labels: list[int] | list[list[int]]
    class_names: list[list[str]]
    sources: list[str]  # per item: where it comes from, for messages and the result's problem list
    folds: list[int] | None = None
    templates: Sequence[str] | None = None  # None: the CLIP ImageNet templates (the paper's choice, App. B)
    problems: list[Problem] = field(default_factory=list)
    class_labels: list[str] | None = None  # one display name per class for tables/plots (default: its first name)

    def labels_for_display(self) -> list[str]:
        return list(self.class_labels) if self.class_labels is not None else [n[0] for n in self.class_names]


@dataclass
class Retrieval:
    """Retrieval: ``queries`` (raw inputs of ``query_modality``) against ``gallery`` (raw inputs of the benchmark's
    modality); ``relevant[q]`` is the gallery index that query ``q`` should find (Clotho's 5 captions per clip are
    5 queries with the same gallery index)."""

    queries: list[Any]
    query_modality: str
    gallery: list[Any]
    relevant: list[int]
    query_sources: list[str]
    gallery_sources: list[str]
    problems: list[Problem] = field(default_factory=list)


BenchmarkData = Classification | Retrieval


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark. ``read(root, options)`` reads the dataset at ``root`` as its authors publish it
    (for ``labelled``/``pairs``: the manifest file) and returns :class:`Classification` or :class:`Retrieval`;
    it raises :class:`bindcore.errors.InputError` naming the missing file when the layout is wrong."""

    name: str
    modality: str  # the modality it measures ("audio"); "*" for the generic ones (--modality picks)
    task: Task
    metrics: tuple[str, ...]  # ("top1", "top5") | ("R@1", "R@5", "R@10") | ("mAP",)
    layout: str  # the expected layout under ROOT, in words (for --list and layout errors)
    protocol: str  # one line: split, clip sampling, prompts (the full text is in bindcore/eval/README.md)
    read: Callable[[Path, Any], BenchmarkData]
    paper: Mapping[str, float] = field(default_factory=dict)  # fractions, e.g. {"top1": 0.669}; {} = none
    paper_source: str = ""  # e.g. "ImageBind Table 2 (ViT-H)"
    options: type[BaseModel] = NoOptions  # extra="forbid" pydantic model of the -o key value options
