"""Video through the anchor's image tower, as ImageBind does it (spec §3.4 and §4.2).

Preprocessing (``load_and_transform_video_data`` with its defaults), step for step:

1. decode with PyAV; ``fps`` = the stream's average rate, ``duration = num_frames / fps``;
2. ``clips_per_video`` (5) windows of ``clip_duration`` (2 s): clip k starts at ``k·(D−2)/(n−1)`` (the
   pinned pytorchvideo sampler; every window starts at 0 when D ≤ 2); window frames are
   ``range(ceil(fps·start), min(ceil(fps·end), num_frames))``;
3. keep the first and last frame of each window (``linspace(0, T−1, 2)``), ``/255``;
4. bilinear resize (no antialias) so the short side is ``image_size`` and the long side
   ``floor(long/short·image_size)``; normalise with the CLIP mean/std;
5. ``num_crops`` (3) square crops along the longer axis (start / centre with ``ceil`` offsets / end).

Result per video: ``(clips·crops, 3, 2, S, S)``, clip-major. Only the two frames per window are kept in
memory while decoding.

Model: ImageBind's vision stem is a ``Conv3d`` with a 2-frame kernel (stride 2 in time), so a 2-frame
clip gives one token per patch. An open_clip image tower has the equivalent 2-D kernel (the 3-D kernel summed
over time, see ``bindcore.convert``); for video the 3-D kernel itself is needed. :class:`VideoModality`
keeps it as a frozen parameter: ImageBind's own kernel after ``bindcore convert imagebind``, otherwise the
2-D kernel *inflated* (split evenly over the 2 frames), which makes a still video embed exactly like the image.
Clip embeddings are L2-normalised, averaged over the ``clips·crops`` views and re-normalised (ImageBind
averages without re-normalising; the direction is the same).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from bind_vision.toy import render_image
from bindcore.anchor import CLIP_MEAN, CLIP_STD, AnchorConfig, AnchorTowerModality
from bindcore.config import ModalityConfig
from bindcore.errors import ConfigError, InputError
from bindcore.nn import fold_clips, mean_of_clips
from bindcore.toyworld import Scene

FRAMES_PER_CLIP = 2  # ImageBind's temporal kernel size; the frame count is tied to it


class VideoConfig(ModalityConfig):
    """Clip/crop sampling and normalisation of videos (defaults: ImageBind's) and the anchor that embeds them."""

    anchor: AnchorConfig = Field(default_factory=AnchorConfig,
                                 description="the frozen OpenCLIP anchor whose image tower embeds the clips")
    clip_duration: float = Field(2.0, gt=0, description="seconds per temporal clip")
    clips_per_video: int = Field(5, ge=1, le=64, description="temporal clips spread evenly over each video")
    num_crops: Literal[1, 3] = Field(3, description="spatial crops per clip: 3 = start/centre/end, 1 = centre")
    mean: tuple[float, float, float] = Field(CLIP_MEAN, description="per-channel mean subtracted after /255")
    std: tuple[float, float, float] = Field(CLIP_STD, description="per-channel std divided by after /255")
    toy_image_size: int = Field(32, ge=8, description="side of the frames render_toy draws")
    toy_frames: int = Field(6, ge=2, le=64, description="frames of a render_toy video")
    toy_fps: float = Field(2.0, gt=0, description="frame rate of render_toy videos")


# -- sampling (pure functions) ----------------------------------------------------------------------------
def clip_windows(num_frames: int, fps: float, *, clip_duration: float = 2.0,
                 clips_per_video: int = 5) -> list[tuple[int, int]]:
    """``(first, last)`` frame index of every temporal clip (pinned pytorchvideo + decord semantics).

    Mirrors the reference's arithmetic types (a ``Fraction`` start times a float rate), so indices match it.
    """
    if num_frames < 1 or not fps > 0:
        raise ValueError(f"need at least one frame and a positive frame rate (got {num_frames}, {fps})")
    duration = num_frames / fps
    max_start = Fraction(max(duration - clip_duration, 0))
    step = Fraction(max_start, max(clips_per_video - 1, 1))
    windows = []
    for k in range(clips_per_video):
        start = step * k
        end = start + Fraction(clip_duration)
        first = math.ceil(fps * start)
        stop = min(math.ceil(fps * end), num_frames)
        first = min(first, num_frames - 1)
        last = max(stop - 1, first)
        windows.append((first, last))
    return windows


def temporal_subsample(first: int, last: int, count: int = FRAMES_PER_CLIP) -> list[int]:
    """``count`` evenly spaced indices from ``first`` to ``last`` inclusive (``linspace(...).long()``)."""
    steps = torch.linspace(0, last - first, count).clamp(0, last - first).long()
    return [first + int(i) for i in steps]


def short_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) with the short side ``size`` and the long side ``floor(long / short · size)`` (pytorchvideo)."""
    if width < height:
        return math.floor(height / width * size), size
    return size, math.floor(width / height * size)


def crop_offsets(height: int, width: int, size: int, num_crops: int) -> list[tuple[int, int]]:
    """(y, x) of each crop: centre offsets use ``ceil``; 3 crops go start/centre/end along the longer axis."""
    y_centre, x_centre = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    if num_crops == 1:
        return [(y_centre, x_centre)]
    if height > width:
        return [(0, x_centre), (y_centre, x_centre), (height - size, x_centre)]
    return [(y_centre, 0), (y_centre, x_centre), (y_centre, width - size)]


# -- decoding ---------------------------------------------------------------------------------------------
def read_frames(path: str | os.PathLike[str], wanted: Sequence[int] | None = None
                ) -> tuple[dict[int, np.ndarray], int, float]:
    """Decode ``path``; returns ({index: (H, W, 3) uint8} for the ``wanted`` indices, frame count, fps).

    With ``wanted=None`` only the count and rate are read (from the container when it knows them).
    """
    import av

    try:
        container = av.open(os.fspath(path))
    except (av.error.FFmpegError, OSError) as error:
        raise InputError(path, f"cannot open as a video: {error}",
                         fix="pass a video file PyAV/FFmpeg can decode") from None
    with container:
        if not container.streams.video:
            raise InputError(path, "has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if not fps > 0:
            raise InputError(path, "has no usable frame rate")
        count = int(stream.frames or 0)
        if wanted is None and count > 0:
            return {}, count, fps
        keep = set(wanted or ())
        frames: dict[int, np.ndarray] = {}
        decoded = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index in keep:
                    frames[index] = frame.to_ndarray(format="rgb24")
                decoded = index + 1
        except av.error.FFmpegError as error:
            raise InputError(path, f"video decoding failed after {decoded} frames: {error}") from None
    if decoded == 0:
        raise InputError(path, "contains no decodable frames")
    return frames, count or decoded, fps


def preprocess_video(path: str | os.PathLike[str], *, size: int, clip_duration: float = 2.0,
                     clips_per_video: int = 5, num_crops: int = 3, mean: Sequence[float] = CLIP_MEAN,
                     std: Sequence[float] = CLIP_STD) -> Tensor:
    """One video → ``(clips_per_video · num_crops, 3, 2, size, size)`` float32 (see the module docstring)."""
    _, count, fps = read_frames(path)
    windows = clip_windows(count, fps, clip_duration=clip_duration, clips_per_video=clips_per_video)
    picks = [temporal_subsample(first, last) for first, last in windows]
    frames, decoded_count, _ = read_frames(path, sorted({i for pick in picks for i in pick}))
    missing = sorted({i for pick in picks for i in pick} - set(frames))
    if missing:  # the container over-reported its frame count: redo the sampling on the real count
        windows = clip_windows(decoded_count, fps, clip_duration=clip_duration, clips_per_video=clips_per_video)
        picks = [temporal_subsample(first, last) for first, last in windows]
        frames, _, _ = read_frames(path, sorted({i for pick in picks for i in pick}))
    mean_t = torch.tensor(mean, dtype=torch.float32)[:, None, None, None]
    std_t = torch.tensor(std, dtype=torch.float32)[:, None, None, None]
    views = []
    for pick in picks:
        clip = torch.from_numpy(np.stack([frames[i] for i in pick])).permute(3, 0, 1, 2).to(torch.float32)
        clip = clip / 255.0  # (3, T, H, W)
        height, width = short_side_size(clip.shape[2], clip.shape[3], size)
        clip = F.interpolate(clip, size=(height, width), mode="bilinear", align_corners=False)
        clip = (clip - mean_t) / std_t
        views += [clip[:, :, y:y + size, x:x + size] for y, x in crop_offsets(height, width, size, num_crops)]
    return torch.stack(views)


# -- model --------------------------------------------------------------------------------------------------
def inflate_patch_kernel(kernel_2d: Tensor, frames: int = FRAMES_PER_CLIP) -> Tensor:
    """(W, 3, p, p) → (W, 3, frames, p, p), split evenly so a still clip gives the 2-D result."""
    return kernel_2d.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames


class VideoModality(AnchorTowerModality):
    """Videos → 2-frame clips × crops → the anchor's image tower with a temporal (Conv3d) patch stem."""

    name: ClassVar[str] = "video"
    Config: ClassVar[type[ModalityConfig]] = VideoConfig
    config: VideoConfig

    def __init__(self, config: ModalityConfig | None = None, **options: Any):
        super().__init__(config, **options)
        visual = self.anchor.model.visual
        conv = getattr(visual, "conv1", None)
        if not isinstance(conv, nn.Conv2d) or not hasattr(visual, "class_embedding"):
            raise ConfigError("video needs an open_clip ViT anchor (VisionTransformer with a conv1 patch stem)")
        self.image_size = self.anchor.image_size[0]
        #: The temporal patch stem; frozen like the rest of the anchor. Stored in the state dict so converted
        #: ImageBind weights keep their real per-frame kernels.
        self.temporal_patch_embed = nn.Parameter(inflate_patch_kernel(conv.weight.detach().float().cpu()),
                                                 requires_grad=False)

    @classmethod
    def from_imagebind(cls, state_dict: Mapping[str, Tensor], **config: Any) -> VideoModality:
        """Video over a converted anchor (``config["anchor"]``) with ImageBind's own Conv3d kernel from
        ``modality_preprocessors.vision.rgbt_stem.proj.1.weight``. Extra keys are ignored."""
        key = "modality_preprocessors.vision.rgbt_stem.proj.1.weight"
        if key not in state_dict:
            raise ConfigError(f"ImageBind video needs {key!r} (the vision stem)")
        config.pop("num_heads", None)  # the anchor's heads come from its own config
        module = cls(**config)
        kernel = state_dict[key]
        if tuple(kernel.shape) != tuple(module.temporal_patch_embed.shape):
            raise ConfigError(f"{key} has shape {tuple(kernel.shape)} but the anchor's stem needs "
                              f"{tuple(module.temporal_patch_embed.shape)}")
        with torch.no_grad():
            module.temporal_patch_embed.copy_(kernel)
        return module

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        """Video paths → ``(B, clips·crops, 3, 2, S, S)`` float32."""
        if isinstance(inputs, (str, bytes, os.PathLike)):
            raise InputError(inputs, "video.preprocess takes a sequence of videos, not a single path",
                             fix="wrap it in a list: preprocess([path])")
        c = self.config
        batch = []
        for item in inputs:
            if not isinstance(item, (str, os.PathLike)):
                raise InputError(item, "a video must be given as a file path", fix="pass the path of a video file")
            if not os.path.isfile(item):
                raise InputError(item, "file not found", fix="check the path")
            batch.append(preprocess_video(item, size=self.image_size, clip_duration=c.clip_duration,
                                          clips_per_video=c.clips_per_video, num_crops=c.num_crops, mean=c.mean,
                                          std=c.std))
        if not batch:
            views = c.clips_per_video * c.num_crops
            return torch.empty(0, views, 3, FRAMES_PER_CLIP, self.image_size, self.image_size)
        return torch.stack(batch)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """``(B, V, 3, 2, S, S)`` → pooled tower features ``(B, V, width)``; one clip is still a view axis of 1."""
        if x.ndim != 6 or x.shape[-4] != 3 or x.shape[-3] != FRAMES_PER_CLIP:
            fix = "add the views axis (x.unsqueeze(1))" if x.ndim == 5 else "pass preprocess output"
            raise InputError(x, "video.encode takes (B, views, 3, 2, H, W) clips", fix=fix)
        flat, lead = fold_clips(x, 4)
        visual = self.anchor.model.visual
        kernel = self.temporal_patch_embed.to(device=flat.device, dtype=flat.dtype)
        stride = (FRAMES_PER_CLIP, *visual.conv1.stride)
        tokens = F.conv3d(flat, kernel, stride=stride).flatten(2).transpose(1, 2)  # (N, patches, width)
        cls = visual.class_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + visual.positional_embedding.to(tokens.dtype)
        tokens = visual.ln_pre(visual.patch_dropout(tokens))
        pooled = self.anchor.pool_image_tokens(tokens)  # the anchor's trunk (its exact SDPA path where it has one)
        return pooled.reshape(*lead, -1)

    def project(self, h: Tensor) -> Tensor:
        """``(B, V, width)`` clip features → unit clip embeddings → their mean over views, re-normalised: ``(B, D)``."""
        if h.ndim != 3:
            fix = "add the views axis (h.unsqueeze(1))" if h.ndim == 2 else "pass the output of encode()"
            raise InputError(h, "video.project takes (B, views, width) features", fix=fix)
        flat, lead = fold_clips(h, 1)
        return mean_of_clips(self.anchor.project_image(flat).reshape(*lead, -1))

    def input_device_dtype(self) -> tuple[torch.device, torch.dtype]:
        return self.anchor.device, self.anchor.dtype

    def render_toy(self, scene: Scene) -> str:
        """A short lossless video of the scene's toy image drifting sideways; returns its path.

        Videos are files, so renders are cached under the temp directory by content (same scene and config →
        same path and bytes)."""
        c = self.config
        key = hashlib.sha256(f"{scene}|{c.toy_image_size}|{c.toy_frames}|{c.toy_fps}".encode()).hexdigest()[:24]
        path = Path(tempfile.gettempdir()) / "bindcore_toy_video" / f"{key}.avi"
        if not path.is_file():
            image = render_image(scene, c.toy_image_size)
            step = int(scene.rng("video").integers(1, 3))  # drift speed, a nuisance like position and size
            frames = np.stack([np.roll(image, step * t, axis=1) for t in range(c.toy_frames)])
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(f".{os.getpid()}.tmp.avi")
            write_video(staging, frames, c.toy_fps)
            os.replace(staging, path)  # atomic: parallel test workers may render the same scene
        return str(path)


def write_video(path: str | os.PathLike[str], frames: np.ndarray, fps: float) -> Path:
    """Write ``(T, H, W, 3)`` uint8 frames as a lossless (PNG-in-AVI) video."""
    import av

    with av.open(os.fspath(path), "w", format="avi") as container:
        stream = container.add_stream("png", rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "rgb24"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)
