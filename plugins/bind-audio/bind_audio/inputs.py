"""Raw audio inputs: file paths and in-memory arrays with a stated sample rate.

Both become an :class:`AudioSource` that knows its length and rate and reads any frame range on demand,
so a long file is never decoded whole: only the frames the clips need are read (``soundfile`` seeks).
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from bindcore import InputError

# Formats libsndfile decodes that we document and test; others it can read also work.
SUPPORTED_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class AudioArray:
    """An in-memory waveform and its sample rate.

    ``samples`` is a numpy array or torch tensor of real values: floats are used as they are (full
    scale is +-1), integer PCM is scaled to [-1, 1) by its dtype (int16 / 32768, uint8 (x - 128) / 128, …),
    as when a file is decoded. Layout is either

    * 1-D ``(samples,)``: mono, or
    * 2-D ``(channels, samples)``: channel-first, like ``torchaudio.load``. A ``(samples, channels)``
      array (``soundfile.read``'s layout) must be transposed first: shapes are never guessed.
    """

    samples: Any
    sample_rate: int

    def __repr__(self) -> str:
        shape = tuple(getattr(self.samples, "shape", ()))
        return f"AudioArray(shape={shape}, sample_rate={self.sample_rate})"


class AudioSource:
    """One input's channels x frames at its own rate, readable by frame range. A context manager."""

    item: Any
    sample_rate: int
    num_frames: int
    num_channels: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` (clamped to the input) as float32 ``(channels, frames)``."""
        return np.ascontiguousarray(self._read(start, stop).T)

    def read_mono(self, start: int, stop: int, channel: str) -> np.ndarray:
        """Frames ``[start, stop)`` as one float32 channel: channel 0 (``"first"``) or the mean (``"mean"``)."""
        block = self._read(start, stop, pcm16=True)  # (frames, channels)
        scale = np.float32(1 / 32768) if block.dtype == np.int16 else None
        if channel == "first" or block.shape[1] == 1:
            if scale is not None:  # one pass: int16 x 2^-15 is exact in float32
                return np.multiply(block[:, 0], scale, dtype=np.float32)
            return block[:, 0].astype(np.float32)
        mono = block.mean(axis=1, dtype=np.float32) if scale is None else block.sum(axis=1, dtype=np.float32) * scale
        return mono if scale is None else mono / np.float32(block.shape[1])

    def _read(self, start: int, stop: int, pcm16: bool = False) -> np.ndarray:
        """``(frames, channels)``: float32, or int16 when ``pcm16`` and the data are 16-bit PCM."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle, if any."""

    def __enter__(self) -> AudioSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ArraySource(AudioSource):
    def __init__(self, item: Any, samples: np.ndarray, sample_rate: int):
        self.item = item
        self.samples = samples  # (channels, frames)
        self.sample_rate = sample_rate
        self.num_channels, self.num_frames = samples.shape

    def _read(self, start: int, stop: int, pcm16: bool = False) -> np.ndarray:
        return self.samples[:, max(start, 0): max(stop, 0)].T


class FileSource(AudioSource):
    """A file opened once; each read seeks to the frames it needs, so nothing else is decoded."""

    def __init__(self, item: Any, path: Path):
        self.item = item
        self.path = path
        try:
            self.handle = sf.SoundFile(str(path))
        except Exception as exc:  # libsndfile's errors are RuntimeError/LibsndfileError with the reason
            raise InputError(item, f"cannot decode audio: {_libsndfile_reason(exc)}",
                             fix=f"pass a readable audio file ({', '.join(SUPPORTED_SUFFIXES)})") from None
        self.sample_rate = int(self.handle.samplerate)
        self.num_frames = int(self.handle.frames)
        self.num_channels = int(self.handle.channels)
        self.pcm16 = self.handle.subtype == "PCM_16"
        if self.sample_rate <= 0:
            self.close()
            raise InputError(item, f"file reports sample rate {self.sample_rate}", fix="re-encode the file")

    def _read(self, start: int, stop: int, pcm16: bool = False) -> np.ndarray:
        start, stop = max(start, 0), min(stop, self.num_frames)
        if stop <= start:
            return np.zeros((0, self.num_channels), dtype=np.float32)
        # 16-bit PCM is read as int16 (half the bytes, no conversion of unused channels); int16 / 32768 is
        # exactly what libsndfile's float conversion gives.
        dtype = "int16" if pcm16 and self.pcm16 else "float32"
        try:
            self.handle.seek(start)
            data = self.handle.read(stop - start, dtype=dtype, always_2d=True)
        except Exception as exc:
            raise InputError(self.item, f"decoding failed at frames {start}-{stop}: {_libsndfile_reason(exc)}",
                             fix="the file may be truncated or corrupt; re-encode it") from None
        if data.shape[0] != stop - start:
            raise InputError(self.item, f"file is truncated: it reports {self.num_frames} frames but frames "
                             f"{start + data.shape[0]}-{stop} could not be read",
                             fix="re-encode or re-download the file")
        return data

    def close(self) -> None:
        self.handle.close()


class WavPcm16Source(AudioSource):
    """A plain 16-bit PCM WAV file read with ``os.pread`` straight from its data chunk: the same samples as
    libsndfile gives, without its per-open and per-read costs (a tenth of a one-file call)."""

    def __init__(self, item: Any, fd: int, data_offset: int, num_frames: int, num_channels: int, sample_rate: int):
        self.item, self.fd, self.data_offset = item, fd, data_offset
        self.num_frames, self.num_channels, self.sample_rate = num_frames, num_channels, sample_rate

    def _read(self, start: int, stop: int, pcm16: bool = False) -> np.ndarray:
        start, stop = max(start, 0), min(stop, self.num_frames)
        if stop <= start:
            return np.zeros((0, self.num_channels), dtype=np.int16 if pcm16 else np.float32)
        frame_bytes = 2 * self.num_channels
        data = os.pread(self.fd, (stop - start) * frame_bytes, self.data_offset + start * frame_bytes)
        if len(data) != (stop - start) * frame_bytes:  # the file shrank since it was opened
            raise InputError(self.item, f"file is truncated: frames {start + len(data) // frame_bytes}-{stop} "
                             "could not be read", fix="re-encode or re-download the file")
        block = np.frombuffer(data, dtype="<i2").reshape(-1, self.num_channels)
        # int16 / 32768 is exact in float32 and is libsndfile's float conversion of 16-bit PCM
        return block if pcm16 else np.multiply(block, np.float32(1 / 32768), dtype=np.float32)

    def close(self) -> None:
        os.close(self.fd)


WAVE_FORMAT_PCM, WAVE_FORMAT_EXTENSIBLE = 1, 0xFFFE
MAX_WAV_CHUNKS = 64  # chunks to walk before the data chunk; more is unusual enough to leave to libsndfile


def _open_wav_pcm16(item: Any, path: Path, file_size: int) -> AudioSource | None:
    """A :class:`WavPcm16Source` when ``path`` is a well-formed little-endian 16-bit PCM WAV whose data chunk
    is complete, else ``None`` (libsndfile then handles it, with its own rules for truncated or odd files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        head = os.pread(fd, 12, 0)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            os.close(fd)
            return None
        position, fmt = 12, None
        for _ in range(MAX_WAV_CHUNKS):
            header = os.pread(fd, 8, position)
            if len(header) < 8:
                break
            chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk_id == b"fmt ":
                body = os.pread(fd, min(size, 40), position + 8)
                if len(body) < 16:
                    break
                tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                    tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the sub-format GUID
                fmt = (tag, channels, rate, block_align, bits)
            elif chunk_id == b"data":
                if fmt is None or position + 8 + size > file_size:
                    break
                tag, channels, rate, block_align, bits = fmt
                if tag != WAVE_FORMAT_PCM or bits != 16 or channels < 1 or block_align != 2 * channels or rate <= 0:
                    break
                return WavPcm16Source(item, fd, position + 8, size // block_align, channels, rate)
            position += 8 + size + (size & 1)  # chunks are word-aligned
    except OSError:
        pass
    os.close(fd)
    return None


def _libsndfile_reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[-1]


def open_source(item: Any) -> AudioSource:
    """Turn one raw input into an :class:`AudioSource`, or raise :class:`bindcore.InputError`."""
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        try:
            info = os.stat(path)
        except OSError:
            info = None
        if info is None or not stat.S_ISREG(info.st_mode):
            reason = "is a directory" if info is not None and stat.S_ISDIR(info.st_mode) else "no such file"
            raise InputError(item, reason, fix="pass the path of an audio file")
        if info.st_size == 0:
            raise InputError(item, "file is empty (0 bytes)", fix="pass a non-empty audio file")
        return _open_wav_pcm16(item, path, info.st_size) or FileSource(item, path)
    if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[1], (tuple, list)):
        item = AudioArray(*item)
    if isinstance(item, AudioArray):
        return ArraySource(item, _as_channels_first(item), _check_rate(item, item.sample_rate))
    if isinstance(item, (np.ndarray, torch.Tensor)):
        raise InputError(item, "a bare array has no sample rate",
                         fix="wrap it: AudioArray(samples, sample_rate) or (samples, sample_rate)")
    raise InputError(item, f"unsupported audio input type {type(item).__name__}",
                     fix="pass a file path, AudioArray(samples, sample_rate) or a (samples, sample_rate) tuple")


def _check_rate(item: Any, rate: Any) -> int:
    if isinstance(rate, (float, np.floating)) and float(rate).is_integer():
        rate = int(rate)
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise InputError(item, f"sample_rate must be a positive integer, got {rate!r}",
                         fix="state the rate in Hz, e.g. AudioArray(x, 16000)")
    return int(rate)


def _as_channels_first(item: AudioArray) -> np.ndarray:
    samples = item.samples
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu()
        if samples.dtype in (torch.bfloat16, torch.float16):
            samples = samples.float()
        samples = samples.numpy()
    samples = np.asarray(samples)
    if samples.dtype.kind not in "fiu":
        raise InputError(item, f"samples have dtype {samples.dtype}", fix="pass real-valued float or integer samples")
    if samples.dtype.kind in "iu":  # integer PCM → [-1, 1), as soundfile/torchaudio decode files
        info = np.iinfo(samples.dtype)
        midpoint = 0 if samples.dtype.kind == "i" else (int(info.max) + 1) // 2
        samples = (samples.astype(np.float64) - midpoint) / (int(info.max) + 1 - midpoint)
    if samples.ndim == 1:
        samples = samples[None]
    elif samples.ndim != 2:
        raise InputError(item, f"samples must be 1-D (mono) or 2-D (channels, samples), got {samples.ndim}-D")
    if samples.shape[0] == 0:
        raise InputError(item, "samples have zero channels", fix="pass (channels, samples) with channels >= 1")
    if samples.shape[1] == 0:
        raise InputError(item, "audio has zero samples", fix="pass a non-empty waveform")
    if samples.shape[0] > samples.shape[1]:
        raise InputError(item, f"shape {samples.shape} reads as {samples.shape[0]} channels of "
                         f"{samples.shape[1]} samples", fix="the layout is (channels, samples); transpose it")
    return np.ascontiguousarray(samples, dtype=np.float32)
