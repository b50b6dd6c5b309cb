"""Options of the IMU modality: encoder sizes, windowing, resampling, padding, normalisation, toy rendering."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bindcore import ModalityConfig

#: Fixed channel order of every preprocessed IMU tensor (accelerometer in m/s², gyroscope in rad/s).
CHANNELS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
NUM_CHANNELS = len(CHANNELS)

#: Longest recording, in steps after resampling, that ``preprocess`` resamples in memory: 2**25 steps is 23 h at
#: 400 Hz and ~1.6 GB of float64 for six channels. Beyond it the usual cause is a sample rate in the wrong units.
MAX_RESAMPLED_STEPS = 1 << 25
#: A CSV's irregular timestamps are interpolated onto a uniform grid of at most this many steps per row read:
#: a longer grid is mostly made-up samples across a gap (and a 1 KB file could otherwise ask for gigabytes).
MAX_GRID_STEPS_PER_ROW = 16

PadMode = Literal["edge", "zeros", "repeat"]
Normalization = Literal["none", "per_window", "fixed"]


class ImuConfig(ModalityConfig):
    """Every size and preprocessing choice of the IMU modality. Defaults are ImageBind-huge's IMU branch."""

    # -- encoder (defaults: ImageBind-huge, paper Table 9: 512 wide, 6 layers, 8 heads, drop path 0.7) --------
    embed_dim: int = Field(1024, gt=0, description="dimension D of the shared embedding space")
    width: int = Field(512, gt=0, description="transformer width")
    num_layers: int = Field(6, ge=0, description="transformer blocks")
    num_heads: int = Field(8, gt=0, description="attention heads (must divide width)")
    drop_path: float = Field(0.7, ge=0.0, lt=1.0, description="stochastic depth of the last block (linear ramp)")
    head_dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout before the head's linear (reference 0.5)")
    patch_size: int = Field(8, gt=0, description="time steps per token (kernel = stride of the conv stem)")
    grad_checkpointing: bool = Field(False, description="recompute trunk blocks in backward to save memory")

    # -- windows ---------------------------------------------------------------------------------------
    window_seconds: float = Field(5.0, gt=0.0, description="duration of one window in seconds")
    window_steps: int = Field(2000, gt=0, description="time steps one window is resampled to")
    num_windows: int = Field(3, gt=0, description="windows per item, evenly spaced over the recording, averaged")
    pad_mode: PadMode = Field("edge", description="how recordings shorter than a window are padded at the end")
    min_samples: int = Field(8, ge=2, description="shortest recording accepted (samples at its own rate)")

    # -- input conventions -----------------------------------------------------------------------------
    default_sample_rate: float = Field(
        400.0, gt=0.0, description="sample rate (Hz) of .npy files, CSV files without timestamps and toy renders")

    # -- per-channel normalisation ---------------------------------------------------------------------
    normalization: Normalization = Field("none", description="none | per_window | fixed (channel_mean/channel_std)")
    channel_mean: tuple[float, float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    channel_std: tuple[float, float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    norm_eps: float = Field(1e-6, gt=0.0, description="floor of the std in per_window normalisation")
    max_abs_value: float = Field(
        1e6, gt=0.0, description="largest |value| passed to the encoder (after normalisation); larger ones are "
                                 "refused. 1e6 m/s^2 is 100,000 g, beyond any accelerometer (raw 16-bit counts and "
                                 "milli-g still fit), and keeps the float32 stem's LayerNorm far from overflowing "
                                 "(around 1e18)")

    # -- toy world -------------------------------------------------------------------------------------
    toy_seconds: float | None = Field(None, gt=0.0, description="duration of toy renders (None: window_seconds)")

    @model_validator(mode="after")
    def _check_consistency(self) -> ImuConfig:
        if self.window_steps % self.patch_size:
            raise ValueError(f"window_steps ({self.window_steps}) must be a multiple of patch_size "
                             f"({self.patch_size})")
        if self.width % self.num_heads:
            raise ValueError(f"width ({self.width}) must be divisible by num_heads ({self.num_heads})")
        if any(s <= 0 for s in self.channel_std):
            raise ValueError(f"channel_std must be positive, got {self.channel_std}")
        return self

    @property
    def target_sample_rate(self) -> float:
        """Rate (Hz) every recording is resampled to: ``window_steps / window_seconds`` (400 Hz by default)."""
        return self.window_steps / self.window_seconds

    @property
    def num_patches(self) -> int:
        return self.window_steps // self.patch_size
