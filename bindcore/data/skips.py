"""Bad items that a run skipped (``modalities.<name>.data.on_error: skip``): logged once each, listed in
``RUN/skipped.jsonl``, and counted against ``max_skipped``.

DataLoader workers cannot log for the run, so each batch carries the records of the items it replaced
(:class:`~bindcore.data.batches.StepBatches`) and the process that trains hands them to :class:`SkippedItems`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from bindcore.errors import ConfigError
from bindcore.io import atomic_file

SKIPPED_FILE = "skipped.jsonl"


class SkippedItems:
    """The distinct items skipped so far, per modality. ``limits``: modality → (max_skipped fraction, dataset size).

    ``path`` is written by one process only (``write=True``); every process counts, so in a distributed run
    (records gathered from all ranks) every rank reaches the same decision at the same step.
    """

    def __init__(self, path: Path, limits: Mapping[str, tuple[float, int]], *, log: Callable[[str], None] = print,
                 write: bool = True, resume_step: int = 0):
        self.path = path
        self.limits = dict(limits)
        self.log = log
        self.write = write
        self.seen: dict[str, set[int]] = {name: set() for name in self.limits}
        kept: list[dict[str, Any]] = []
        if resume_step > 0 and path.is_file():  # keep what the steps before the resume point skipped
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill
                if isinstance(record, dict) and {"modality", "index", "step"} <= record.keys() and \
                        record["step"] is not None and record["step"] < resume_step:
                    kept.append(record)
                    self.seen.setdefault(record["modality"], set()).add(int(record["index"]))
        if write and path.exists():  # a fresh start, or a resume that replays the steps after its checkpoint
            if kept:
                with atomic_file(path, "w") as handle:
                    handle.writelines(json.dumps(record) + "\n" for record in kept)
            else:
                path.unlink()

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Log and list the records not seen before; raise :class:`ConfigError` past a modality's ``max_skipped``."""
        fresh = []
        for record in records:
            seen = self.seen.setdefault(record["modality"], set())
            if int(record["index"]) not in seen:
                seen.add(int(record["index"]))
                fresh.append(dict(record))
        if not fresh:
            return
        for record in fresh:
            self.log(f"skipped {record['where']} (its {record['key']} input {record['item']}): {record['reason']}; "
                     f"replaced by item {record['substitute']}")
        if self.write:
            with self.path.open("a") as handle:
                handle.writelines(json.dumps(record) + "\n" for record in fresh)
        for name in sorted({record["modality"] for record in fresh}):
            fraction, size = self.limits.get(name, (0.0, 1))
            count = len(self.seen[name])
            if count > fraction * size:
                raise ConfigError(f"modalities.{name}.data: {count} of its {size} items were skipped as unreadable "
                                  f"(listed in {self.path}), more than max_skipped {fraction:g} allows "
                                  f"({int(fraction * size)} items); fix or remove them, or raise "
                                  f"modalities.{name}.data.max_skipped")

    def note_unusable(self, name: str, records: Iterable[Mapping[str, Any]], total: int) -> None:
        """List the inputs a source left out when it was built (``where``, ``reason``: a video without sound, ...)
        with ``step`` None, and log their count; they do not count against ``max_skipped``."""
        records = [{"modality": name, "index": None, "step": None, **record} for record in records]
        if not records:
            return
        reasons: dict[str, int] = {}
        for record in records:
            reasons[record["reason"].split(" (")[0]] = reasons.get(record["reason"].split(" (")[0], 0) + 1
        summary = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        self.log(f"data: {name}: {len(records)} of {total} inputs left out ({summary}); listed in {self.path}")
        if self.write:
            with self.path.open("a") as handle:
                handle.writelines(json.dumps(record) + "\n" for record in records)
