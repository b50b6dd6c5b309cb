"""bind-imu: the ``imu`` modality for bindcore (accelerometer xyz + gyroscope xyz, ImageBind-compatible)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bindcore
from bind_imu.config import CHANNELS, ImuConfig
from bind_imu.modality import ImuModality
from bind_imu.recording import COLUMN_ALIASES, TIMESTAMP_COLUMNS, ImuRecording, read_csv, read_npy


@bindcore.hookimpl
def register_modalities(register: Callable[[type[Any]], None]) -> None:
    register(ImuModality)


__all__ = [
    "CHANNELS",
    "COLUMN_ALIASES",
    "TIMESTAMP_COLUMNS",
    "ImuConfig",
    "ImuModality",
    "ImuRecording",
    "read_csv",
    "read_npy",
    "register_modalities",
]
