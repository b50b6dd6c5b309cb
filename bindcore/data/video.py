"""Videos with sound as (frame, audio clip) pairs: ``data: {kind: video, root: DIR}`` (every video under DIR) or
``{kind: video, manifest: FILE}`` (rows ``{"video": path[, "label": name]}``).

Item ``n`` is clip ``n mod clips_per_video`` of video ``n // clips_per_video``: a time ``t`` drawn from the run's
seed (a pure function of seed, video and clip number, so resumes replay the same pairs), the video frame shown at
``t`` (an RGB ``(H, W, 3)`` uint8 array, what the vision plugin takes) and the audio of the clip centred on ``t``
(``clip_seconds``, default the modality's ``clip_duration``: 2 s for audio, paper App. C), as a
``(samples (channels, n) float32, sample_rate)`` pair, what the audio plugin takes. Decoding uses PyAV.

Videos without an audio track, shorter than one clip, or unreadable are found when the source is built (their
headers are read), listed in ``unusable`` (the run writes them to ``RUN/skipped.jsonl``) and left out, with a
count in the log; never dropped silently.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bindcore.data.sources import IMAGE_KEY, PairedSource, _remove_tree, read_manifest
from bindcore.errors import ConfigError, InputError
from bindcore.seeds import seed_of
from bindcore.toyworld import CONCEPTS

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
#: Threads reading video headers when a source is built (I/O bound).
PROBE_THREADS = 8


@dataclass(frozen=True)
class VideoInfo:
    path: str
    duration: float  #: seconds both the picture and the sound (or the recording) cover, from ``start``
    label: str | None = None
    recording: str | None = None  #: a timestamped recording paired to the video (else its audio track)
    start: float = 0.0


def probe_recording(path: str, recording: str, clip_seconds: float) -> tuple[VideoInfo | None, str | None]:
    """(info, None) of a video and its timestamped recording that overlap by a clip or more, else (None, why)."""
    import av

    from bindcore.data.recordings import recording_span

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return None, "no video stream"
            stream = container.streams.video[0]
            length = float(stream.duration * stream.time_base) if stream.duration is not None else \
                (container.duration or 0) / 1e6
        first, last = recording_span(recording)
    except (av.error.FFmpegError, OSError, ValueError) as error:
        return None, f"not a readable video ({type(error).__name__}: {error})"
    except InputError as error:
        return None, f"{recording}: {error.reason}"
    start, stop = max(0.0, first), min(length, last)
    if stop - start < clip_seconds:
        return None, f"shorter ({max(0.0, stop - start):.2f} s of video and recording together) than one " \
                     f"{clip_seconds:g} s clip"
    return VideoInfo(path, stop - start, recording=recording, start=start), None


def probe(path: str, clip_seconds: float) -> tuple[VideoInfo | None, str | None]:
    """(info, None) of a usable video, or (None, why it cannot be used)."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return None, "no video stream"
            if not container.streams.audio:
                return None, "no audio track"
            durations = []
            for stream in (container.streams.video[0], container.streams.audio[0]):
                if stream.duration is not None and stream.time_base is not None:
                    durations.append(float(stream.duration * stream.time_base))
                elif container.duration is not None:
                    durations.append(container.duration / 1e6)
            if not durations:
                return None, "its duration is unknown (no stream or container duration)"
    except (av.error.FFmpegError, OSError, ValueError) as error:
        return None, f"not a readable video ({type(error).__name__}: {error})"
    duration = min(durations)
    if duration < clip_seconds:
        return None, f"shorter ({duration:.2f} s) than one {clip_seconds:g} s clip"
    return VideoInfo(path, duration), None


#: What this process has read of video headers, by file (path, size, mtime) and clip length: a run builds its video
#: source twice (the recipe's file check, then the trainer) and must not read thousands of headers twice. A file
#: changed on disk has a new size or mtime, so it is read again.
_PROBED: dict[tuple[Any, ...], tuple[VideoInfo | None, str | None]] = {}


def file_version(path: str) -> tuple[int, int]:
    """(size, mtime in ns) of a file: what changes when it is rewritten."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def probe_once(path: str, recording: str | None, clip_seconds: float) -> tuple[VideoInfo | None, str | None]:
    """:func:`probe` (or :func:`probe_recording` with a ``recording``), read once per process and file version."""
    def read() -> tuple[VideoInfo | None, str | None]:
        return probe(path, clip_seconds) if recording is None else probe_recording(path, recording, clip_seconds)

    try:
        key = (path, file_version(path), recording, recording and file_version(recording), clip_seconds)
    except OSError:
        return read()  # not there (or not readable): the probe says so, and nothing is remembered
    found = _PROBED.get(key)
    if found is None:
        found = _PROBED[key] = read()
    return found


def list_videos(root: Path) -> list[str]:
    """Every video file under ``root`` (by suffix), sorted."""
    if not root.is_dir():
        raise ConfigError(f"video folder not found: {root}")
    return sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def _frame_from(container: Any, path: str, t: float) -> np.ndarray:
    stream = container.streams.video[0]
    container.seek(max(0, int(t / stream.time_base)), stream=stream, backward=True, any_frame=False)
    chosen = None
    for frame in container.decode(stream):
        if frame.time is not None and frame.time > t + 1e-6 and chosen is not None:
            break
        chosen = frame
    if chosen is None:
        raise InputError(path, f"no video frame at {t:.3f} s", fix="re-encode the video")
    return chosen.to_ndarray(format="rgb24")


def _audio_from(container: Any, path: str, start: float, stop: float) -> tuple[np.ndarray, int]:
    import av

    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or stream.rate
    resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=rate)
    container.seek(max(0, int(start / stream.time_base)), stream=stream, backward=True, any_frame=False)
    first_sample, want = round(start * rate), round((stop - start) * rate)
    pieces, begin, have = [], None, 0
    for frame in container.decode(stream):
        for converted in resampler.resample(frame):
            position = round(float(converted.pts * converted.time_base) * rate) if converted.pts is not None \
                else (begin or 0) + have
            if begin is None:
                begin = position
            pieces.append(converted.to_ndarray().reshape(-1, converted.samples))
            have += converted.samples
        if begin is not None and begin + have >= first_sample + want:
            break
    if not pieces or begin is None:
        raise InputError(path, f"no audio between {start:.3f} s and {stop:.3f} s", fix="re-encode the video")
    samples = np.concatenate(pieces, axis=1)
    offset = max(0, first_sample - begin)
    clip = samples[:, offset:offset + want]
    if clip.shape[1] < want:  # the track ends early: pad with silence (never shorter than the probed duration)
        clip = np.pad(clip, ((0, 0), (0, want - clip.shape[1])))
    return np.ascontiguousarray(clip, dtype=np.float32), int(rate)


def read_frame(path: str, t: float) -> np.ndarray:
    """The RGB frame shown at ``t`` seconds: the last one starting at or before ``t``."""
    import av

    with av.open(path) as container:
        return _frame_from(container, path, t)


def read_audio(path: str, start: float, stop: float) -> tuple[np.ndarray, int]:
    """``(samples (channels, n) float32, sample_rate)`` of the audio in ``[start, stop)`` seconds."""
    import av

    with av.open(path) as container:
        return _audio_from(container, path, start, stop)


def read_pair(path: str, t: float, half: float) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
    """(the frame at ``t``, the audio of ``[t - half, t + half)``) from one opening of the file (opening costs
    about as much as decoding either)."""
    import av

    with av.open(path) as container:
        audio = _audio_from(container, path, t - half, t + half)
        return _frame_from(container, path, t), audio


#: Frames decoded along with their audio, kept for the image key's load (per process): about 0.7 MB each at 360p.
FRAMES_KEPT = 512


class VideoSource(PairedSource):
    """(frame, audio clip) pairs of videos with sound (see the module docstring)."""

    def __init__(self, videos: Sequence[str], modality: str, *, clip_seconds: float, seed: int,
                 clips_per_video: int = 1, labels: Sequence[str | None] | None = None,
                 recordings: Sequence[str] | None = None, class_names: Sequence[str] = CONCEPTS,
                 where: str = "videos"):
        self.modality = modality
        self.keys = (IMAGE_KEY, modality)
        self.clip_seconds, self.seed, self.clips_per_video = float(clip_seconds), int(seed), int(clips_per_video)
        self.class_index = {name: i for i, name in enumerate(class_names)}
        labels = list(labels) if labels is not None else [None] * len(videos)
        recordings = list(recordings) if recordings is not None else [None] * len(videos)
        with ThreadPoolExecutor(PROBE_THREADS) as pool:
            probed = list(pool.map(lambda pair: probe_once(*pair, self.clip_seconds),
                                   zip(videos, recordings, strict=True)))
        self.videos: list[VideoInfo] = []
        self.unusable: list[dict[str, str]] = []
        for path, label, (info, reason) in zip(videos, labels, probed, strict=True):
            if info is None:
                self.unusable.append({"where": path, "reason": reason or "unusable"})
            else:
                self.videos.append(VideoInfo(info.path, info.duration, label, info.recording, info.start))
        if not self.videos:
            shown = "; ".join(f"{u['where']}: {u['reason']}" for u in self.unusable[:3])
            raise ConfigError(f"{where}: none of the {len(videos)} videos can be used"
                              f"{' (' + shown + ')' if shown else ''}; each needs an audio track and at least "
                              f"{self.clip_seconds:g} s")

    @classmethod
    def from_data(cls, name: str, data: Any, recipe_file: Path | None, module: Any, seed: int) -> VideoSource:
        """The source of a ``kind: video`` data block (``root`` or ``manifest``)."""
        from bindcore.recipe.schema import resolve_path

        where = f"modalities.{name}.data"
        config = getattr(module, "config", None)  # audio: clip_duration; IMU: window_seconds
        clip = data.clip_seconds or getattr(config, "clip_duration", None) or getattr(config, "window_seconds", None)
        if not clip:
            raise ConfigError(f"{where}.clip_seconds: the {name} modality declares no clip_duration; set how many "
                              f"seconds of {name} each frame is paired with")
        if data.root:
            videos, labels, recordings = list_videos(resolve_path(recipe_file, data.root)), None, None
        else:
            manifest = resolve_path(recipe_file, data.manifest or "")
            rows = read_manifest(manifest, ("video",))
            if any(name in row for row in rows):  # timestamped recordings of the modality, paired to the videos
                rows = read_manifest(manifest, ("video", name))
            videos, labels = [r["video"] for r in rows], [r.get("label") for r in rows]
            recordings = [r[name] for r in rows] if rows and name in rows[0] else None
        if not videos:
            raise ConfigError(f"{where}.root: no video files ({', '.join(VIDEO_SUFFIXES)}) under {data.root}")
        return cls(videos, name, clip_seconds=float(clip), seed=seed, clips_per_video=data.clips_per_video,
                   labels=labels, recordings=recordings, where=where)

    def __len__(self) -> int:
        return len(self.videos) * self.clips_per_video

    @property
    def inputs_total(self) -> int:
        """Videos listed, usable or not."""
        return len(self.videos) + len(self.unusable)

    def time_of(self, index: int) -> float:
        """The seeded centre time ``t`` of item ``index`` (clip fully inside the video)."""
        video = self.videos[index // self.clips_per_video]
        unit = seed_of("video-time", self.seed, video.path, index % self.clips_per_video) / 2**64
        half = self.clip_seconds / 2
        return video.start + half + unit * max(0.0, video.duration - self.clip_seconds)

    def load(self, index: int, keys: Sequence[str] | None = None) -> dict[str, Any]:
        video, t = self.videos[index // self.clips_per_video], self.time_of(index)
        half = self.clip_seconds / 2
        keys = tuple(keys or self.keys)
        item: dict[str, Any] = {"label": self.label(index)}
        frames = self.__dict__.setdefault("_frames", OrderedDict())  # per process (a worker's copy has its own)
        if self.modality in keys and video.recording is not None:
            from bindcore.data.recordings import Recording

            item[self.modality] = Recording(video.recording).window(t - half, t + half, self._windows())
        elif self.modality in keys:
            if IMAGE_KEY in keys or self.__dict__.get("_frames_wanted"):
                # the image is read too (now, or right after: batches load one key for all items, then the
                # other): one opening of the file serves both
                frame, item[self.modality] = read_pair(video.path, t, half)
                frames[index] = frame
                while len(frames) > FRAMES_KEPT:
                    frames.popitem(last=False)
            else:  # no image asked for yet (e.g. the anchor's embeddings are cached): sound only
                item[self.modality] = read_audio(video.path, t - half, t + half)
        if IMAGE_KEY in keys:
            self.__dict__["_frames_wanted"] = True
            found = frames.pop(index, None)
            item[IMAGE_KEY] = found if found is not None else read_frame(video.path, t)
        return item

    def _windows(self) -> str:
        """This process's folder of cut recording windows (removed with the source or at exit)."""
        folder = self.__dict__.get("_window_folder")
        if folder is None or self.__dict__.get("_window_pid") != os.getpid():
            folder = tempfile.mkdtemp(prefix="bindcore-windows-")
            self.__dict__.update(_window_folder=folder, _window_pid=os.getpid())
            self.__dict__["_window_finalizer"] = weakref.finalize(self, _remove_tree, folder, os.getpid())
        return folder

    def release(self, item: dict[str, Any]) -> None:
        window = item.get(self.modality)
        if isinstance(window, str) and os.path.dirname(window) == self.__dict__.get("_window_folder"):
            Path(window).unlink(missing_ok=True)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_window_folder", "_window_pid", "_window_finalizer", "_frames"):
            state.pop(key, None)  # a worker makes its own
        return state

    def label(self, index: int) -> int | None:
        value = self.videos[index // self.clips_per_video].label
        return None if value is None else self.class_index.get(str(value))

    def describe(self, index: int) -> str:
        return f"{self.videos[index // self.clips_per_video].path} at {self.time_of(index):.2f} s"

    def fingerprint(self, key: str = IMAGE_KEY) -> str:
        stats = [(p, *file_version(p)) for v in self.videos for p in (v.path, *([v.recording] if v.recording else []))]
        return "video:" + json.dumps([key, self.seed, self.clip_seconds, self.clips_per_video, stats])


def check_videos(name: str, block: Any, seed: int, recipe_file: Path | None,
                 problems: list[str]) -> tuple[int | None, str | None]:
    """``bindcore train --check`` of a ``kind: video`` modality: every video's header is read. Returns (items,
    summary line)."""
    prefix = f"modalities.{name}.data"
    try:
        source = VideoSource.from_data(name, block.data, recipe_file, block, seed)
    except ConfigError as error:
        problems.append(f"{prefix}: {error}")
        return None, None
    left_out = f", {len(source.unusable)} left out (no sound, too short or unreadable)" if source.unusable else ""
    return len(source), f"{prefix}: {len(source.videos)} videos with sound checked{left_out}"
