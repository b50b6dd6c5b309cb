"""The ``audio`` modality: log-mel clips → patch ViT (ImageBind's audio trunk) → per-clip head → mean."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from bind_audio import imagebind, toy
from bind_audio.config import AudioConfig
from bind_audio.inputs import AudioArray
from bind_audio.preprocess import preprocess
from bindcore import Modality
from bindcore.nn import PatchEncoder, ProjectionHead, fold_clips, mean_of_clips
from bindcore.toyworld import Scene


class AudioModality(Modality):
    """Audio files or arrays → unit embeddings ``(N, embed_dim)`` (mean of the clips' embeddings).

    ``preprocess`` gives ``(N, clips, 1, num_mel_bins, target_length)``; ``encode`` gives per-clip CLS
    features ``(N, clips, width)``; ``project`` embeds each clip, averages and re-normalises.
    """

    name = "audio"
    Config = AudioConfig
    augment_axes: Mapping[str, int] = {"frequency": -2, "time": -1}  # (N, clips, 1, mel bins, frames)
    #: The config fields ``preprocess`` reads: preprocessed shards (``bindcore shard --preprocessed``) stay valid
    #: when only the encoder's fields change.
    preprocess_fields: tuple[str, ...] = (
        "sample_rate", "clip_duration", "clips_per_item", "channel", "max_sample_rate", "resample_lowpass_width",
        "resample_rolloff", "num_mel_bins", "target_length", "frame_length_ms", "frame_shift_ms", "preemphasis",
        "low_freq", "high_freq", "pad_value", "mean", "std")
    config: AudioConfig

    def __init__(self, config: AudioConfig | None = None, **options: Any):
        super().__init__(config, **options)
        cfg = self.config
        self.encoder = PatchEncoder(in_chans=1, input_size=cfg.input_size, patch_size=cfg.patch_size,
                                    stride=cfg.patch_stride, width=cfg.width, depth=cfg.num_layers,
                                    num_heads=cfg.num_heads, drop_path=cfg.drop_path, add_bias_kv=True)
        self.encoder.trunk.grad_checkpointing = cfg.grad_checkpointing
        self.head = ProjectionHead(cfg.width, cfg.embed_dim, dropout=cfg.head_dropout)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def logit_scale(self) -> float:
        """ImageBind's fixed audio logit scale (×20): its embeddings are ``logit_scale`` × ours (see README)."""
        return self.config.logit_scale

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        """Paths, :class:`AudioArray` or ``(samples, sample_rate)`` → ``(N, clips, 1, mel_bins, frames)``."""
        return preprocess(inputs, self.config)

    def encode(self, x: Tensor) -> Tensor:
        """``(N, clips, 1, num_mel_bins, target_length)`` → per-clip CLS features ``(N, clips, width)``."""
        expected = (1, *self.config.input_size)
        if x.ndim != 5 or tuple(x.shape[2:]) != expected:
            hint = (" (one clip per item? add the clip axis: x.unsqueeze(1))"
                    if x.ndim == 4 and tuple(x.shape[1:]) == expected else "")
            raise ValueError(f"audio encode expects (N, clips, {', '.join(map(str, expected))}) as preprocess() "
                             f"gives, got {tuple(x.shape)}{hint}")
        flat, lead = fold_clips(x, 3)
        return self.encoder(flat).reshape(*lead, -1)

    def project_clips(self, h: Tensor) -> Tensor:
        """Per-clip features ``(N, clips, width)`` → per-clip unit embeddings ``(N, clips, D)``."""
        return self.head(h)

    def project(self, h: Tensor) -> Tensor:
        """``(N, clips, width)`` from :meth:`encode` → ``(N, D)``: clip embeddings averaged, unit length."""
        if h.ndim != 3 or h.shape[-1] != self.config.width:
            raise ValueError(f"audio project expects encode()'s (N, clips, {self.config.width}), got "
                             f"{tuple(h.shape)}; for one clip per item add the clip axis: h.unsqueeze(1)")
        return mean_of_clips(self.project_clips(h))

    @classmethod
    def from_imagebind(cls, state_dict: Mapping[str, Tensor], **config: Any) -> AudioModality:
        """Build from ImageBind's audio entries; sizes come from shapes, ``num_heads`` (default 12) from you."""
        options = imagebind.infer_config(state_dict, **config)
        module = cls(**options)
        weights = imagebind.convert_state_dict(state_dict)
        module.load_state_dict({k: v.detach().to(torch.float32) for k, v in weights.items()}, strict=True)
        return module

    def render_toy(self, scene: Scene) -> AudioArray:
        """A short stereo waveform whose chord/rhythm encode the concept (see :mod:`bind_audio.toy`)."""
        cfg = self.config
        duration = cfg.toy_duration or cfg.clip_duration
        return AudioArray(toy.render(scene, sample_rate=cfg.sample_rate, duration=duration), cfg.sample_rate)
