"""Audio benchmarks read from their published layouts (``bindcore benchmark --list``).

ESC-50 (Piczak 2015, github.com/karolpiczak/ESC-50): ``ROOT`` is the unpacked ``ESC-50-master`` folder with
``meta/esc50.csv`` (columns ``filename,fold,target,category,esc10,src_file,take``) and ``audio/<filename>``
(2000 clips of 5 s, 50 classes, 5 folds). Class ``target`` is named by its ``category`` with ``_`` read as a space
("crying_baby" → "crying baby"). The clips are sampled by the audio modality's own config: ImageBind's (3 clips of
2 s spread evenly) covers the whole 5 s input, as the paper's evaluation does.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bindcore.errors import InputError
from bindcore.eval.benchmarks.spec import Benchmark, Classification, NoOptions, Problem

ESC50_META = Path("meta") / "esc50.csv"
ESC50_COLUMNS = ("filename", "fold", "target", "category")
ESC50_URL = "https://github.com/karolpiczak/ESC-50"


def _esc50_root(root: Path) -> Path:
    if (root / ESC50_META).is_file():
        return root
    nested = root / "ESC-50-master"
    hint = f"; ROOT seems to be its parent: pass {nested}" if (nested / ESC50_META).is_file() else ""
    raise InputError(str(root / ESC50_META), f"not found{hint}",
                     fix=f"ROOT must be the unpacked ESC-50-master folder ({ESC50_URL}), holding meta/esc50.csv and "
                         f"audio/*.wav")


def read_esc50(root: Path, options: NoOptions) -> Classification:
    """Every row of ``meta/esc50.csv``, in file order; a row whose clip is missing becomes a problem."""
    root = _esc50_root(Path(root))
    meta = root / ESC50_META
    with meta.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ESC50_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(str(meta), f"lacks the column(s) {', '.join(missing)} (has: "
                                        f"{', '.join(reader.fieldnames or []) or 'none'})",
                             fix=f"use the meta/esc50.csv published with the dataset ({ESC50_URL})")
        rows = [(reader.line_num, row) for row in reader]
    names: dict[int, str] = {}
    items, labels, folds, sources, problems = [], [], [], [], []
    for line, row in rows:
        where = f"{ESC50_META.as_posix()} line {line}"
        try:
            target, fold = int(row["target"]), int(row["fold"])
        except (TypeError, ValueError):
            problems.append(Problem(where, f"target {row['target']!r} or fold {row['fold']!r} is not an integer"))
            continue
        category = (row["category"] or "").replace("_", " ").strip()
        if names.setdefault(target, category) != category:
            raise InputError(str(meta), f"line {line}: target {target} is {category!r} here but "
                                        f"{names[target]!r} earlier", fix="use the published meta/esc50.csv")
        path = root / "audio" / row["filename"]
        source = f"{where}: audio/{row['filename']}"
        if not path.is_file():
            problems.append(Problem(source, "file not found"))
            continue
        items.append(str(path))
        labels.append(target)
        folds.append(fold)
        sources.append(source)
    if sorted(names) != list(range(len(names))):
        raise InputError(str(meta), f"targets are not 0..{len(names) - 1} (got {sorted(names)[:10]}...)",
                         fix="use the published meta/esc50.csv")
    return Classification(items=items, labels=labels, class_names=[[names[t]] for t in range(len(names))],
                          sources=sources, folds=folds, problems=problems)


ESC50 = Benchmark(
    name="esc50", modality="audio", task="zero_shot", metrics=("top1", "top5"),
    layout="ESC-50-master/ as published: meta/esc50.csv (filename,fold,target,category,...) and audio/*.wav",
    protocol="zero-shot over the 50 categories (CLIP ImageNet templates), 5-fold average of top-1; each 5 s clip "
             "as the audio config samples it (ImageBind: 3 clips of 2 s covering it)",
    read=read_esc50, paper={"top1": 0.669}, paper_source="ImageBind Table 2 (ViT-H, emergent)")

BENCHMARKS = (ESC50,)


def write_esc50_layout(root: Path, clips: list[tuple[np.ndarray, int]], targets: list[int],
                       categories: list[str], folds: list[int]) -> Path:
    """Write ``clips`` (``(channels, samples)`` float32 waveforms with their rates) in ESC-50's published layout
    under ``root`` (tests and benchmarks: the toy world rendered as ESC-50). Float WAV keeps the samples exact.
    File names follow ESC-50's ``{fold}-{source id}-{take}-{target}.wav``."""
    import soundfile as sf

    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(exist_ok=True)
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for index, ((samples, rate), target, fold) in enumerate(zip(clips, targets, folds, strict=True)):
        filename = f"{fold}-{100000 + index}-A-{target}.wav"
        sf.write(str(root / "audio" / filename), np.asarray(samples).T, rate, subtype="FLOAT")
        lines.append(f"{filename},{fold},{target},{categories[target].replace(' ', '_')},False,{100000 + index},A")
    (root / ESC50_META).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
