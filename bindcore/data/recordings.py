"""Timestamped sensor recordings paired to video frames (Ego4D's IMU streams): a CSV with a header and a timestamp
column, in seconds from the video's start (``timestamp``/``time``/``t``, or with a unit suffix ``_s``, ``_ms``,
``_us``, ``_ns``). The core never parses the channels (the modality's plugin does): it cuts the rows of a time
window out, into a CSV of the same header, which the plugin reads like any recording file.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np

from bindcore.errors import InputError

#: Timestamp column names and the factor that turns their unit into seconds.
TIMESTAMP_UNITS = {"timestamp": 1.0, "time": 1.0, "t": 1.0}
for _name in ("timestamp", "time"):
    TIMESTAMP_UNITS.update({f"{_name}_s": 1.0, f"{_name}_ms": 1e-3, f"{_name}_us": 1e-6, f"{_name}_ns": 1e-9})


class Recording:
    """One CSV recording: its header line, data lines and their times (seconds)."""

    def __init__(self, path: str):
        self.path = path
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(path, f"cannot read the recording ({type(error).__name__})",
                             fix="give a UTF-8 CSV with a header and a timestamp column") from None
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 3:
            raise InputError(path, "a recording needs a header and at least two rows")
        delimiter = max(",;\t", key=lines[0].count)
        header = next(csv.reader([lines[0]], delimiter=delimiter))
        keys = [h.strip().lower() for h in header]
        column = next((i for i, key in enumerate(keys) if key in TIMESTAMP_UNITS), None)
        if column is None:
            raise InputError(path, f"no timestamp column (header: {', '.join(header)})",
                             fix=f"name it one of {', '.join(TIMESTAMP_UNITS)} (seconds from the video's start)")
        try:
            times = [float(row[column]) for row in csv.reader(lines[1:], delimiter=delimiter)]
        except (ValueError, IndexError):
            raise InputError(path, "a row has no number in the timestamp column", fix="repair or drop it") from None
        self.header, self.lines = lines[0], lines[1:]
        self.times = np.asarray(times) * TIMESTAMP_UNITS[keys[column]]
        if not (np.diff(self.times) > 0).all():
            raise InputError(path, "timestamps must increase strictly", fix="sort the rows and drop duplicates")

    @property
    def span(self) -> tuple[float, float]:
        return float(self.times[0]), float(self.times[-1])

    def window(self, start: float, stop: float, folder: str | os.PathLike[str]) -> str:
        """A CSV (same header) of the rows timed in ``[start, stop)``, written under ``folder``; its path."""
        first, last = np.searchsorted(self.times, [start, stop], side="left")
        if last - first < 2:
            raise InputError(self.path, f"fewer than two rows between {start:.3f} s and {stop:.3f} s",
                             fix="check the recording's timestamps against the video")
        handle, name = tempfile.mkstemp(suffix=".csv", dir=folder)
        with os.fdopen(handle, "w") as out:
            out.write("\n".join([self.header, *self.lines[first:last]]) + "\n")
        return name


def recording_span(path: str) -> tuple[float, float]:
    """(first, last) timestamp of a recording in seconds; InputError when it cannot be read."""
    return Recording(path).span


__all__ = ["TIMESTAMP_UNITS", "Recording", "recording_span"]
