"""The paper's audio benchmarks besides ESC-50: Clotho and AudioCaps (text→audio retrieval), AudioSet (tagging,
mAP over 527 classes) and VGGSound (zero-shot top-1). Each reads the metadata files as their authors publish
them; AudioSet, VGGSound and AudioCaps publish YouTube segment lists only, so their audio is the user's local
clips, found by the naming rule of :mod:`bind_audio.youtube_clips`. Protocols: ``bindcore/eval/README.md``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bind_audio.youtube_clips import ClipIndex
from bindcore.errors import InputError
from bindcore.eval.benchmarks.spec import Benchmark, Classification, NoOptions, Problem, Retrieval

CLOTHO_CAPTIONS = "clotho_captions_evaluation.csv"
CLOTHO_AUDIO = "evaluation"
AUDIOSET_SEGMENTS = "eval_segments.csv"
AUDIOSET_CLASSES = "class_labels_indices.csv"
VGGSOUND_CSV = "vggsound.csv"


def _require(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise InputError(path, f"{what} not found", fix=fix)
    return path


def _rows(path: Path, delimiter: str = ",", skip_comments: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a CSV file; blank lines skipped, ``#`` lines too when asked (AudioSet)."""
    with path.open(newline="", encoding="utf-8-sig") as file:  # Excel-saved lists start with a BOM
        reader = csv.reader(file, delimiter=delimiter, skipinitialspace=True)
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            if skip_comments and fields[0].lstrip().startswith("#"):
                continue
            yield reader.line_num, [f.strip() for f in fields]


def _header(path: Path, rows: Iterator[tuple[int, list[str]]], required: tuple[str, ...]) -> dict[str, int]:
    try:
        _, header = next(rows)
    except StopIteration:
        raise InputError(path, "empty file", fix=f"expected a header with {', '.join(required)}") from None
    columns = {name: i for i, name in enumerate(header)}
    missing = [name for name in required if name not in columns]
    if missing:
        raise InputError(path, f"no column {', '.join(missing)} (header: {', '.join(header)})",
                         fix=f"expected the columns {', '.join(required)}")
    return columns


class AudioFolderOptions(BaseModel):
    """``-o audio_dir PATH``: where the local clips are (searched recursively; ROOT by default)."""

    model_config = ConfigDict(extra="forbid")
    audio_dir: Path | None = None


class AudioCapsOptions(AudioFolderOptions):
    """``-o test_list PATH`` (required): the test list, since ImageBind used ARNLQ's 796-clip split rather than
    AudioCaps' test.csv. Either AudioCaps' own CSV columns (audiocap_id,youtube_id,start_time,caption) or a TSV
    with ``audio`` (a path relative to ROOT) and ``text`` columns (ViT-Lens's ``audiocaps_test_ib.tsv``)."""

    test_list: Path


def read_clotho(root: Path, options: NoOptions) -> Retrieval:
    """Clotho's evaluation split: ``clotho_captions_evaluation.csv`` (file_name, caption_1..caption_5) and the
    audio in ``evaluation/``; each of a clip's 5 captions is its own text→audio query (1,045 clips)."""
    path = _require(Path(root) / CLOTHO_CAPTIONS, "Clotho's caption file",
                    fix="pass the folder holding clotho_captions_evaluation.csv and evaluation/ (Clotho v2 on Zenodo)")
    caption_columns = tuple(f"caption_{i}" for i in range(1, 6))
    rows = _rows(path)
    columns = _header(path, rows, ("file_name", *caption_columns))
    data = Retrieval(queries=[], query_modality="text", gallery=[], relevant=[], query_sources=[],
                     gallery_sources=[])
    for line, fields in rows:
        name = fields[columns["file_name"]]
        where = f"{CLOTHO_CAPTIONS} line {line}: {CLOTHO_AUDIO}/{name}"
        audio = Path(root) / CLOTHO_AUDIO / name
        if not audio.is_file():
            data.problems.append(Problem(source=where, reason="audio file missing (its 5 captions are not queried)"))
            continue
        index = len(data.gallery)
        data.gallery.append(audio)
        data.gallery_sources.append(f"{CLOTHO_AUDIO}/{name}")
        for column in caption_columns:
            caption = fields[columns[column]] if columns[column] < len(fields) else ""
            if not caption:
                data.problems.append(Problem(source=f"{where} {column}", reason="empty caption"))
                continue
            data.queries.append(caption)
            data.relevant.append(index)
            data.query_sources.append(f"{CLOTHO_CAPTIONS} line {line} {column}")
    return data


def read_audiocaps(root: Path, options: AudioCapsOptions) -> Retrieval:
    """AudioCaps text→audio over the user's test list: one gallery clip per distinct segment (or audio path),
    one query per caption row."""
    path = _require(Path(options.test_list), "AudioCaps test list",
                    fix="pass -o test_list PATH (AudioCaps' test.csv columns or a TSV with audio and text)")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8-sig") as file:
        first = file.readline()
    by_path = "audio" in first.strip().split(delimiter) and "text" in first.strip().split(delimiter)
    rows = _rows(path, delimiter)
    columns = _header(path, rows, ("audio", "text") if by_path else ("youtube_id", "start_time", "caption"))
    clips = None if by_path else ClipIndex(Path(options.audio_dir or root))
    data = Retrieval(queries=[], query_modality="text", gallery=[], relevant=[], query_sources=[],
                     gallery_sources=[])
    gallery_index: dict[Path, int] = {}
    for line, fields in rows:
        where = f"{path.name} line {line}"
        if by_path:
            audio: Path | None = Path(root) / fields[columns["audio"]]
            caption, why = fields[columns["text"]], "audio file missing"
            where += f": {fields[columns['audio']]}"
            if not audio.is_file():
                audio = None
        else:
            ytid, start = fields[columns["youtube_id"]], fields[columns["start_time"]]
            caption, where = fields[columns["caption"]], f"{where}: {ytid} {start}"
            audio, why = clips.find(ytid, start)  # type: ignore[union-attr]
        if audio is None:
            data.problems.append(Problem(source=where, reason=why))
            continue
        if not caption:
            data.problems.append(Problem(source=where, reason="empty caption"))
            continue
        if audio not in gallery_index:
            gallery_index[audio] = len(data.gallery)
            data.gallery.append(audio)
            data.gallery_sources.append(str(audio))
        data.queries.append(caption)
        data.relevant.append(gallery_index[audio])
        data.query_sources.append(where)
    return data


def read_audioset_classes(path: Path) -> tuple[list[str], dict[str, int]]:
    """``class_labels_indices.csv`` (index, mid, display_name) → display names by index and mid → index."""
    rows = _rows(_require(path, "AudioSet's class list", fix="put class_labels_indices.csv in ROOT"))
    columns = _header(path, rows, ("index", "mid", "display_name"))
    names: dict[int, str] = {}
    by_mid: dict[str, int] = {}
    for line, fields in rows:
        try:
            index = int(fields[columns["index"]])
        except ValueError:
            raise InputError(path, f"line {line}: index {fields[columns['index']]!r} is not a number") from None
        names[index] = fields[columns["display_name"]]
        by_mid[fields[columns["mid"]]] = index
    if sorted(names) != list(range(len(names))):
        raise InputError(path, "class indices are not 0..N-1", fix="use AudioSet's class_labels_indices.csv")
    return [names[i] for i in range(len(names))], by_mid


def read_audioset(root: Path, options: AudioFolderOptions) -> Classification:
    """AudioSet's evaluation segments (``eval_segments.csv``: 3 comment lines, then YTID, start_seconds,
    end_seconds, positive_labels) against ``class_labels_indices.csv``; multilabel, mAP over the classes."""
    root = Path(root)
    class_names, by_mid = read_audioset_classes(root / AUDIOSET_CLASSES)
    segments = _require(root / AUDIOSET_SEGMENTS, "AudioSet's evaluation segment list",
                        fix="put eval_segments.csv (from research.google.com/audioset/download.html) in ROOT")
    clips = ClipIndex(Path(options.audio_dir or root))
    data = Classification(items=[], labels=[], class_names=[[name] for name in class_names], sources=[])
    for line, fields in _rows(segments, skip_comments=True):
        where = f"{AUDIOSET_SEGMENTS} line {line}: {fields[0]}"
        if len(fields) < 4:
            data.problems.append(Problem(source=where, reason="expected YTID, start_seconds, end_seconds, labels"))
            continue
        ytid, start, end, mids = fields[0], fields[1], fields[2], fields[3]
        labels = [by_mid.get(mid.strip()) for mid in mids.split(",") if mid.strip()]
        if not labels or None in labels:
            data.problems.append(Problem(source=where, reason=f"labels {mids!r} not all in {AUDIOSET_CLASSES}"))
            continue
        audio, why = clips.find(ytid, start, end)
        if audio is None:
            data.problems.append(Problem(source=where, reason=why))
            continue
        data.items.append(audio)
        data.labels.append(sorted(set(labels)))  # type: ignore[arg-type, union-attr]
        data.sources.append(f"{ytid} {start}")
    return data


def read_vggsound(root: Path, options: AudioFolderOptions) -> Classification:
    """VGGSound's ``vggsound.csv`` (no header: youtube_id, start_seconds, label, split): the test rows; the
    classes are the sorted distinct labels of the whole file (309)."""
    path = _require(Path(root) / VGGSOUND_CSV, "VGGSound's vggsound.csv",
                    fix="put vggsound.csv (from the VGGSound page) in ROOT")
    rows = [(line, fields) for line, fields in _rows(path)]
    bad = [line for line, fields in rows if len(fields) != 4]
    if bad:
        raise InputError(path, f"line {bad[0]}: expected youtube_id,start_seconds,label,split",
                         fix="use VGGSound's vggsound.csv unchanged")
    class_names = sorted({fields[2] for _, fields in rows})
    index = {name: i for i, name in enumerate(class_names)}
    clips = ClipIndex(Path(options.audio_dir or root))
    data = Classification(items=[], labels=[], class_names=[[name] for name in class_names], sources=[])
    for line, (ytid, start, label, split) in rows:
        if split != "test":
            continue
        audio, why = clips.find(ytid, start)
        if audio is None:
            data.problems.append(Problem(source=f"{VGGSOUND_CSV} line {line}: {ytid} {start}", reason=why))
            continue
        data.items.append(audio)
        data.labels.append(index[label])
        data.sources.append(f"{ytid} {start}")
    return data


_LOCAL_CLIPS = "local clips named <ytid>[_<start>[_<end>]].<wav|flac|ogg|mp3> anywhere under ROOT (or -o audio_dir)"

CLOTHO = Benchmark(
    name="clotho", modality="audio", task="retrieval", metrics=("R@1", "R@5", "R@10"),
    layout=f"{CLOTHO_CAPTIONS} and {CLOTHO_AUDIO}/<file_name>.wav (Clotho's evaluation split, unpacked)",
    protocol="evaluation split; each of the 5 captions per clip is a text→audio query", read=read_clotho,
    paper={"R@1": 0.060, "R@10": 0.284}, paper_source="ImageBind Table 3 (emergent)")

AUDIOCAPS = Benchmark(
    name="audiocaps", modality="audio", task="retrieval", metrics=("R@1", "R@5", "R@10"),
    layout=f"the test list given as -o test_list; {_LOCAL_CLIPS}",
    protocol="text→audio over the user's test list (ImageBind: ARNLQ's 796-clip split); one query per caption",
    read=read_audiocaps, paper={"R@1": 0.093, "R@10": 0.423}, paper_source="ImageBind Table 3 (emergent)",
    options=AudioCapsOptions)

AUDIOSET = Benchmark(
    name="audioset", modality="audio", task="multilabel", metrics=("mAP",),
    layout=f"{AUDIOSET_SEGMENTS}, {AUDIOSET_CLASSES}; {_LOCAL_CLIPS}",
    protocol="evaluation segments the user has locally (paper: 19,048); mAP over the 527 classes; CLIP prompts",
    read=read_audioset, paper={"mAP": 0.176}, paper_source="ImageBind Table 2 (ViT-H, AS-A)",
    options=AudioFolderOptions)

VGGSOUND = Benchmark(
    name="vggsound", modality="audio", task="zero_shot", metrics=("top1", "top5"),
    layout=f"{VGGSOUND_CSV}; {_LOCAL_CLIPS}",
    protocol="test rows of vggsound.csv (paper: 14,073 clips), 309 classes; CLIP prompts", read=read_vggsound,
    paper={"top1": 0.278}, paper_source="ImageBind Table 2 (ViT-H, VGGS)", options=AudioFolderOptions)

PAPER_BENCHMARKS = (CLOTHO, AUDIOCAPS, AUDIOSET, VGGSOUND)

__all__ = ["AUDIOCAPS", "AUDIOSET", "CLOTHO", "PAPER_BENCHMARKS", "VGGSOUND", "AudioCapsOptions",
           "AudioFolderOptions", "read_audiocaps", "read_audioset", "read_clotho", "read_vggsound"]
