"""The ``imu`` modality: preprocessing, encoder and head behind the :class:`bindcore.Modality` contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from bind_imu.config import NUM_CHANNELS, ImuConfig
from bind_imu.encoder import ImuEncoder
from bind_imu.preprocess import preprocess_items
from bind_imu.recording import ImuRecording
from bindcore import Modality
from bindcore.nn import ProjectionHead, fold_clips, mean_of_clips
from bindcore.toyworld import Scene


class ImuModality(Modality):
    """Accelerometer + gyroscope recordings → unit embeddings. See the plugin README for every choice."""

    name = "imu"
    Config = ImuConfig
    augment_axes: Mapping[str, int] = {"time": -1}  # (N, windows, 6, T): channels are sensors, not an image axis
    config: ImuConfig

    def __init__(self, config: ImuConfig | None = None, **options: Any):
        super().__init__(config, **options)
        cfg = self.config
        self.encoder = ImuEncoder(in_chans=NUM_CHANNELS, num_steps=cfg.window_steps, patch_size=cfg.patch_size,
                                  width=cfg.width, num_layers=cfg.num_layers, num_heads=cfg.num_heads,
                                  drop_path=cfg.drop_path)
        self.encoder.trunk.grad_checkpointing = cfg.grad_checkpointing
        self.head = ProjectionHead(cfg.width, cfg.embed_dim, dropout=cfg.head_dropout)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def preprocess(self, inputs: Sequence[Any]) -> Tensor:
        """Recordings/paths → ``(N, num_windows, 6, window_steps)`` float32 (see :mod:`bind_imu.preprocess`)."""
        return preprocess_items(inputs, self.config)

    def encode(self, x: Tensor) -> Tensor:
        """``(N, windows, 6, T)`` → ``(N, windows, width)``. One window is still a window axis: ``(N, 1, 6, T)``."""
        if x.ndim != 4:  # the per-window shape is checked by the encoder
            hint = "add the window axis (x.unsqueeze(1))" if x.ndim == 3 else "run preprocess() first"
            raise ValueError(f"{self.name}: expected a (N, windows, {NUM_CHANNELS}, {self.config.window_steps}) "
                             f"batch, got {tuple(x.shape)}; {hint}")
        flat, lead = fold_clips(x, 2)
        return self.encoder(flat).reshape(*lead, -1)

    def project(self, h: Tensor) -> Tensor:
        """``(N, windows, width)`` → mean of the unit window embeddings, re-normalised: ``(N, D)``."""
        if h.ndim != 3 or h.shape[-1] != self.config.width:
            hint = "add the window axis (h.unsqueeze(1))" if h.ndim == 2 else "pass the output of encode()"
            raise ValueError(f"{self.name}: expected (N, windows, {self.config.width}) features, got "
                             f"{tuple(h.shape)}; {hint}")
        flat, lead = fold_clips(h, 1)
        return mean_of_clips(self.head(flat).reshape(*lead, -1))

    @classmethod
    def from_imagebind(cls, state_dict: Mapping[str, Tensor], **config: Any) -> ImuModality:
        from bind_imu.imagebind import load_imagebind

        return load_imagebind(cls, state_dict, **config)

    def render_toy(self, scene: Scene) -> ImuRecording:
        from bind_imu.toy import render_scene

        return render_scene(scene, self.config)
