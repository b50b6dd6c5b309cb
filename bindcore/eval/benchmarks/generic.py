"""The core's benchmarks for a user's own data, registered through the ``register_benchmarks`` hook like any
plugin's: ``labelled`` (zero-shot classification over a manifest of labelled files) and ``pairs`` (retrieval
between the two sides of a pair manifest).

Manifests are JSONL or CSV, read by :func:`bindcore.data.sources.scan_manifest` (the training manifests' reader):
paths are relative to the manifest's folder, and every missing file or malformed row becomes a listed problem.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bindcore.data.sources import IMAGE_KEY, scan_manifest
from bindcore.errors import InputError
from bindcore.eval.benchmarks.spec import Benchmark, Classification, Problem, Retrieval
from bindcore.hookspecs import hookimpl

TEXT_KEY = "text"
#: A manifest key → the modality that embeds it (training manifests name images "image"; the plugin is "vision").
MODALITY_OF_KEY = {IMAGE_KEY: "vision"}


class LabelledOptions(BaseModel):
    """``-o`` options of ``labelled`` (``--modality M`` sets ``modality``)."""

    model_config = ConfigDict(extra="forbid")

    modality: str = Field(description="the manifest key holding the files, and the modality that embeds them")
    label: str = Field("label", description="the manifest key holding each item's class name")


class PairsOptions(BaseModel):
    """``-o`` options of ``pairs`` (``--modality M`` sets ``modality``, the gallery side)."""

    model_config = ConfigDict(extra="forbid")

    modality: str = Field(description="the manifest key of the gallery side (what is retrieved)")
    query: str = Field(TEXT_KEY, description="the manifest key of the query side; 'text' holds captions, any "
                                             "other key file paths")


def _problems(texts: list[str]) -> list[Problem]:
    """``scan_manifest``'s ``"manifest:line: reason"`` strings as problems."""
    problems = []
    for text in texts:
        head, _, rest = text.partition(": ")
        problems.append(Problem(head, rest or text))
    return problems


def _scan(manifest: Path, keys: tuple[str, ...]) -> Any:
    if not manifest.is_file():
        raise InputError(str(manifest), "manifest not found",
                         fix="ROOT of this benchmark is the manifest file (JSONL or CSV) itself")
    scan = scan_manifest(manifest, keys)
    if not scan.rows:
        listed = "; ".join(scan.problems[:5]) or "no rows"
        raise InputError(str(manifest), f"no usable rows ({listed})",
                         fix=f"every row needs {', '.join(repr(k) for k in keys)}")
    return scan


def read_labelled(manifest: Path, options: LabelledOptions) -> Classification:
    """Rows ``{"<modality>": path, "label": "dog"[, "fold": 1]}``; class names are the sorted distinct labels.
    With a ``fold`` column in every row, metrics are per-fold averages (and the few-shot probe tests fold 1)."""
    manifest = Path(manifest)
    scan = _scan(manifest, (options.modality, options.label))
    problems = _problems(scan.problems)
    names = sorted({str(row[options.label]).strip() for row in scan.rows})
    index = {name: i for i, name in enumerate(names)}
    items, labels, sources, folds = [], [], [], []
    for row, line in zip(scan.rows, scan.lines, strict=True):
        items.append(row[options.modality])
        labels.append(index[str(row[options.label]).strip()])
        sources.append(f"{manifest.name}:{line}: {row[options.modality]}")
        folds.append(row.get("fold"))
    fold_numbers = _folds(folds, manifest)
    return Classification(items=items, labels=labels, class_names=[[name] for name in names], sources=sources,
                          folds=fold_numbers, problems=problems)


def _folds(values: list[Any], manifest: Path) -> list[int] | None:
    if all(value in (None, "") for value in values):
        return None
    try:
        return [int(value) for value in values]
    except (TypeError, ValueError):
        raise InputError(str(manifest), "the 'fold' column must hold an integer in every row (or be absent)",
                         fix="give every row a fold number, e.g. 1-5, or drop the column") from None


def read_pairs(manifest: Path, options: PairsOptions) -> Retrieval:
    """Rows ``{"<query key>": caption or path, "<modality>": path}``: query ``i`` should retrieve row ``i``'s
    gallery file. Rows whose gallery file repeats (several captions of one clip) share one gallery item."""
    manifest = Path(manifest)
    if options.query == options.modality:
        raise InputError(str(manifest), f"query and gallery are both {options.query!r}",
                         fix="pass -o query KEY and --modality KEY naming the manifest's two sides")
    file_keys = (options.modality,) if options.query == TEXT_KEY else (options.query, options.modality)
    scan = _scan(manifest, file_keys)
    problems = _problems(scan.problems)
    queries, query_sources, relevant = [], [], []
    gallery: list[str] = []
    gallery_sources: list[str] = []
    gallery_index: dict[str, int] = {}
    for row, line in zip(scan.rows, scan.lines, strict=True):
        query = row.get(options.query)
        if options.query == TEXT_KEY and (not isinstance(query, str) or not query.strip()):
            problems.append(Problem(f"{manifest}:{line}", f"row has no {options.query!r} caption"))
            continue
        target = row[options.modality]
        if target not in gallery_index:
            gallery_index[target] = len(gallery)
            gallery.append(target)
            gallery_sources.append(f"{manifest.name}:{line}: {target}")
        queries.append(query)
        query_sources.append(f"{manifest.name}:{line}: {query}")
        relevant.append(gallery_index[target])
    return Retrieval(queries=queries, query_modality=MODALITY_OF_KEY.get(options.query, options.query),
                     gallery=gallery, relevant=relevant, query_sources=query_sources,
                     gallery_sources=gallery_sources, problems=problems)


LABELLED = Benchmark(
    name="labelled", modality="*", task="zero_shot", metrics=("top1", "top5"),
    layout='a JSONL/CSV manifest, rows {"<modality>": path, "label": "dog"[, "fold": 1]}; paths relative to it',
    protocol="zero-shot: class names = the sorted labels through the CLIP ImageNet prompt templates; top-1/top-5 "
             "(per-fold average when rows have a fold)",
    read=read_labelled, options=LabelledOptions)

PAIRS = Benchmark(
    name="pairs", modality="*", task="retrieval", metrics=("R@1", "R@5", "R@10"),
    layout='a JSONL/CSV manifest, rows {"text": "a dog barks", "<modality>": path} (or two file keys); '
           'paths relative to it',
    protocol="retrieval: each row's query (-o query KEY, default text) should retrieve its row's gallery file; "
             "recall at 1/5/10",
    read=read_pairs, options=PairsOptions)


@hookimpl
def register_benchmarks(register: Callable[[Benchmark], None]) -> None:
    register(LABELLED)
    register(PAIRS)
