"""The explicit IMU input type and the readers of ``.npy`` and CSV files.

Nothing here guesses a layout from a shape: an array only becomes an IMU recording together with its
sample rate and a declared layout (:class:`ImuRecording`); files follow the documented conventions of
:func:`read_npy` and :func:`read_csv`.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bind_imu.config import CHANNELS, MAX_GRID_STEPS_PER_ROW, MAX_RESAMPLED_STEPS, NUM_CHANNELS
from bindcore import InputError
from bindcore.imageio import read_npy as load_checked_npy

Layout = Literal["channels_first", "channels_last"]
LAYOUTS: tuple[str, ...] = ("channels_first", "channels_last")

#: Accepted CSV header names (compared lower-case, surrounding spaces and a trailing unit such as
#: ``" [m/s^2]"`` or ``" (rad/s)"`` removed), per canonical channel.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "acc_x": ("acc_x", "accel_x", "accelerometer_x", "ax"),
    "acc_y": ("acc_y", "accel_y", "accelerometer_y", "ay"),
    "acc_z": ("acc_z", "accel_z", "accelerometer_z", "az"),
    "gyro_x": ("gyro_x", "gyr_x", "gyroscope_x", "gx"),
    "gyro_y": ("gyro_y", "gyr_y", "gyroscope_y", "gy"),
    "gyro_z": ("gyro_z", "gyr_z", "gyroscope_z", "gz"),
}
#: Optional timestamp column names and the factor that turns their unit into seconds.
TIMESTAMP_COLUMNS: dict[str, float] = {
    "timestamp": 1.0, "time": 1.0, "t": 1.0, "timestamp_s": 1.0, "time_s": 1.0,
    "timestamp_ms": 1e-3, "time_ms": 1e-3,
    "timestamp_us": 1e-6, "time_us": 1e-6,
    "timestamp_ns": 1e-9, "time_ns": 1e-9,
}
#: Timestamps whose intervals deviate from the median by more than this fraction are resampled onto a uniform grid.
IRREGULAR_TOLERANCE = 0.01


@dataclass(frozen=True, repr=False)
class ImuRecording:
    """One IMU recording: six channels (acc xyz in m/s², gyro xyz in rad/s, in that order) at ``sample_rate`` Hz.

    ``samples`` is any real-valued 2-D array-like (numpy array, torch tensor, nested lists) laid out as
    ``(6, T)`` when ``layout="channels_first"`` or ``(T, 6)`` when ``layout="channels_last"``.
    ``source`` only labels the recording in error messages (e.g. the file it was read from).
    """

    samples: Any
    sample_rate: float
    layout: Layout = "channels_first"
    source: str | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], sample_rate: float | None = None, *,
                  default_sample_rate: float = 400.0) -> ImuRecording:
        """Read a ``.npy`` (channels-first) or ``.csv`` (header-named columns) file; see the plugin README."""
        suffix = Path(path).suffix.lower()
        if suffix == ".npy":
            return read_npy(path, sample_rate if sample_rate is not None else default_sample_rate)
        if suffix == ".csv":
            return read_csv(path, sample_rate=sample_rate, default_sample_rate=default_sample_rate)
        raise InputError(os.fspath(path), f"unsupported IMU file type {suffix or '(none)'!r}",
                         fix="use a .npy file (channels-first, 6 x T) or a .csv file with a header, "
                             "or pass an ImuRecording")

    def __repr__(self) -> str:
        shape = getattr(self.samples, "shape", None)
        dims = "x".join(str(s) for s in shape) if shape is not None else type(self.samples).__name__
        dtype = getattr(self.samples, "dtype", "")
        where = f", source={self.source!r}" if self.source else ""
        return f"ImuRecording({dims} {dtype} @ {self.sample_rate} Hz, {self.layout}{where})".replace("  ", " ")


def read_npy(path: str | os.PathLike[str], sample_rate: float) -> ImuRecording:
    """A ``.npy`` file holds one channels-first ``(6, T)`` real array; its rate is not stored, so it is given."""
    name = os.fspath(path)
    _check_file(name)
    # Header checked first: a shape whose data the file does not hold is refused before anything is allocated.
    return ImuRecording(load_checked_npy(name, max_pixels=None), sample_rate, "channels_first", source=name)


def _check_file(name: str) -> None:
    if not os.path.exists(name):
        raise InputError(name, "file not found", fix="check the path")
    if os.path.getsize(name) == 0:
        raise InputError(name, "file is empty", fix="the file must hold an IMU recording")


def _column_key(header: str) -> str:
    key = header.strip().lower()
    return re.sub(r"\s*[\[(].*[\])]\s*$", "", key).strip()


def _find_column(keys: list[str], names: tuple[str, ...], what: str, file: str) -> int | None:
    hits = [i for i, k in enumerate(keys) if k in names]
    if len(hits) > 1:
        raise InputError(file, f"several columns match {what}: {', '.join(repr(keys[i]) for i in hits)}",
                         fix="keep one of them")
    return hits[0] if hits else None


def read_csv(path: str | os.PathLike[str], *, sample_rate: float | None = None,
             default_sample_rate: float = 400.0) -> ImuRecording:
    """Read a CSV with a header row naming the six channels (see :data:`COLUMN_ALIASES`).

    Delimiter: comma, semicolon or tab (taken from the header line). Other columns are ignored. With a
    timestamp column (see :data:`TIMESTAMP_COLUMNS`) the rate comes from the median interval and irregular
    timestamps are linearly interpolated onto a uniform grid; without one the rate is ``sample_rate`` if
    given, else ``default_sample_rate``.
    """
    name = os.fspath(path)
    _check_file(name)
    try:
        text = Path(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(name, f"cannot read as text ({type(exc).__name__})", fix="save it as UTF-8 CSV") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(name, "file is empty", fix="the file must hold a header and IMU rows")
    delimiter = max(",;\t", key=lines[0].count)
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    keys = [_column_key(h) for h in rows[0]]
    columns = []
    for channel in CHANNELS:
        index = _find_column(keys, COLUMN_ALIASES[channel], channel, name)
        if index is None:
            raise InputError(name, f"missing column {channel!r} (header: {', '.join(rows[0])})",
                             fix=f"name it one of {', '.join(COLUMN_ALIASES[channel])}")
        columns.append(index)
    time_index = _find_column(keys, tuple(TIMESTAMP_COLUMNS), "a timestamp", name)
    body = rows[1:]
    if not body:
        raise InputError(name, "has a header but no data rows", fix="the file must hold IMU rows")
    wanted = columns + ([time_index] if time_index is not None else [])
    try:
        table = np.array([[float(row[i]) for i in wanted] for row in body], dtype=np.float64)
    except (ValueError, IndexError):
        bad = next(n for n, row in enumerate(body, start=2) if not _row_ok(row, wanted))
        raise InputError(name, f"line {bad} is not a row of numbers for every column",
                         fix="remove or repair that line") from None
    samples = table[:, :NUM_CHANNELS]
    if time_index is None:
        return ImuRecording(samples, sample_rate if sample_rate is not None else default_sample_rate,
                            "channels_last", source=name)
    seconds = table[:, NUM_CHANNELS] * TIMESTAMP_COLUMNS[keys[time_index]]
    samples, rate = _uniform_grid(samples, seconds, name)
    if sample_rate is not None and abs(rate - sample_rate) > IRREGULAR_TOLERANCE * sample_rate:
        raise InputError(name, f"timestamps give {rate:.6g} Hz but sample_rate={sample_rate} was passed",
                         fix="drop one of them")
    return ImuRecording(samples, rate, "channels_last", source=name)


def _row_ok(row: list[str], wanted: list[int]) -> bool:
    try:
        [float(row[i]) for i in wanted]
    except (ValueError, IndexError):
        return False
    return True


def _uniform_grid(samples: np.ndarray, seconds: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    """Samples on a uniform time grid at the median interval, and the rate in Hz."""
    if len(seconds) < 2:
        raise InputError(name, "needs at least two timestamped rows to know the sample rate")
    if not np.isfinite(seconds).all():
        raise InputError(name, "timestamp column holds NaN or Inf", fix="repair the timestamps")
    steps = np.diff(seconds)
    if (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 3  # +1 header, +1 one-based, +1 the later row of the pair
        raise InputError(name, f"timestamps must increase strictly (line {row})", fix="sort rows, drop duplicates")
    interval = float(np.median(steps))
    if np.abs(steps - interval).max() <= IRREGULAR_TOLERANCE * interval:
        return samples, 1.0 / interval
    # The grid's length is checked before it exists: one stray timestamp (t = 1e12) would ask for terabytes.
    length = np.floor((seconds[-1] - seconds[0]) / interval + 1e-9) + 1  # a float: may be huge or inf
    limit = min(MAX_GRID_STEPS_PER_ROW * len(seconds), MAX_RESAMPLED_STEPS)
    if not length <= limit:
        gap = int(np.argmax(steps)) + 3  # the later row of the widest pair, as a file line
        raise InputError(name, f"timestamps span {seconds[-1] - seconds[0]:.6g} s, so a uniform grid at the median "
                               f"interval ({interval:.6g} s) would hold {length:,.0f} steps for {len(seconds)} rows "
                               f"(at most {limit:,}): the recording is mostly a gap "
                               f"({float(steps.max()):.6g} s before line {gap})",
                         fix="check the timestamps' unit and that line; split the recording at the gap")
    grid = seconds[0] + interval * np.arange(int(length))
    uniform = np.stack([np.interp(grid, seconds, samples[:, c]) for c in range(samples.shape[1])], axis=1)
    return uniform, 1.0 / interval
