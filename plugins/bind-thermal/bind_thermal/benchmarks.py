"""The paper's thermal benchmark: LLVIP person vs background, zero-shot on infrared crops (ImageBind App. A).

Crops are cut by the reader (:func:`bind_thermal.datasets.llvip.person_and_background_crops`): that is the
benchmark's I/O, not preprocessing, so the thermal preprocess sees each crop as a plain uint8 array and scales,
resizes and crops it as it does any thermal image. The protocol is written out in ``bindcore/eval/README.md``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bind_thermal.datasets import llvip
from bindcore.eval.benchmarks.spec import Benchmark, Classification

#: ImageBind's class-name lists (App. A): a class scores the maximum cosine over its names.
PERSON_NAMES = ("person", "man", "woman", "people")
BACKGROUND_NAMES = ("street", "road", "car", "light", "tree")


class LlvipOptions(BaseModel):
    """``-o seed N``: the seed of the background boxes' positions (0 by default)."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 0


def read_llvip(root: Path, options: LlvipOptions) -> Classification:
    """The test split's person crops (label 0) and as many same-size background crops (label 1)."""
    found = llvip.person_and_background_crops(root, "test", seed=options.seed)
    return Classification(items=found.crops, labels=found.labels,
                          class_names=[list(PERSON_NAMES), list(BACKGROUND_NAMES)],
                          class_labels=["person", "background"], sources=found.sources, problems=found.problems)


LLVIP = Benchmark(
    name="llvip", modality="thermal", task="zero_shot", metrics=("top1",),
    layout="LLVIP/{infrared,visible}/{train,test}/<id>.jpg and LLVIP/Annotations/<id>.xml (VOC), as LLVIP.zip "
           "unpacks",
    protocol="test split: every person box plus one same-size random box free of persons per person (seeded); "
             "person = max over person/man/woman/people, background = max over street/road/car/light/tree; CLIP "
             "ImageNet prompts",
    read=read_llvip, paper={"top1": 0.634}, paper_source="ImageBind Table 2 (ViT-H, LLVIP)", options=LlvipOptions)

BENCHMARKS = (LLVIP,)

__all__ = ["BACKGROUND_NAMES", "BENCHMARKS", "LLVIP", "PERSON_NAMES", "LlvipOptions", "read_llvip"]
