"""Every constant of the audio modality, validated. Defaults reproduce ImageBind's audio loader and
its ViT-B audio encoder; tiny values (few mel bins, short clips, narrow trunk) train on a CPU."""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

from pydantic import Field, model_validator

from bindcore import ModalityConfig


class AudioConfig(ModalityConfig):
    """Options of the ``audio`` modality (``bindcore.modality("audio", **options)``)."""

    # -- waveform → clips -------------------------------------------------------------------------
    sample_rate: int = Field(16000, ge=1000, le=384000, description="rate every input is resampled to (Hz)")
    clip_duration: float = Field(2.0, gt=0, description="length of each clip (s)")
    clips_per_item: int = Field(3, ge=1, le=64, description="clips spread evenly over each input")
    channel: Literal["first", "mean"] = Field(
        "first", description="'first': channel 0 only, as the reference's Kaldi fbank; 'mean': down-mix")
    max_sample_rate: int = Field(
        384_000, ge=1000, description="highest input rate accepted (Hz), checked from the file header before "
                                      "resampling: 384 kHz is the highest rate audio formats use (DXD); odd higher "
                                      "rates would cost the resampler gigabytes of filter tables")
    resample_lowpass_width: int = Field(6, ge=1, le=64, description="sinc zero crossings (torchaudio default)")
    resample_rolloff: float = Field(0.99, gt=0, le=1.0, description="anti-alias cut-off as a fraction of Nyquist")

    # -- Kaldi-compatible log-mel filterbank --------------------------------------------------------
    num_mel_bins: int = Field(128, ge=4, le=512)
    target_length: int = Field(204, ge=1, description="frames per clip after cutting / padding")
    frame_length_ms: float = Field(25.0, gt=0)
    frame_shift_ms: float = Field(10.0, gt=0)
    preemphasis: float = Field(0.97, ge=0, lt=1)
    low_freq: float = Field(20.0, ge=0, description="lowest mel filter edge (Hz)")
    high_freq: float | None = Field(None, gt=0, description="highest mel filter edge (Hz); None = Nyquist")
    pad_value: float = Field(0.0, description="log-mel value of padded frames (before normalising)")
    mean: float = Field(-4.268, description="normalisation: (logmel - mean) / std")
    std: float = Field(9.138, gt=0)

    # -- encoder (ImageBind ViT-B audio) --------------------------------------------------------------
    patch_size: int = Field(16, ge=1)
    patch_stride: int = Field(10, ge=1)
    width: int = Field(768, ge=8)
    num_layers: int = Field(12, ge=1, description="transformer blocks")
    num_heads: int = Field(12, ge=1)
    drop_path: float = Field(0.1, ge=0, lt=1)
    head_dropout: float = Field(0.0, ge=0, lt=1)
    embed_dim: int = Field(1024, ge=2)
    grad_checkpointing: bool = False
    logit_scale: float = Field(
        20.0, gt=0, description="ImageBind's fixed audio logit scale; kept for reference, not applied")

    # -- toy world ----------------------------------------------------------------------------------
    toy_duration: float | None = Field(None, gt=0, description="length of render_toy waveforms (s); None = clip")

    # -- derived sizes --------------------------------------------------------------------------------
    @property
    def window_samples(self) -> int:
        """Analysis window in samples (Kaldi truncates: 16 kHz x 25 ms = 400)."""
        return int(self.sample_rate * self.frame_length_ms * 0.001)

    @property
    def shift_samples(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms * 0.001)

    @property
    def fft_size(self) -> int:
        """Window zero-padded to the next power of two (Kaldi's round_to_power_of_two)."""
        return 1 << max(self.window_samples - 1, 1).bit_length()

    @property
    def clip_samples(self) -> int:
        return int(self.clip_duration * self.sample_rate)

    @property
    def nyquist(self) -> float:
        return self.sample_rate / 2

    @property
    def mel_high_freq(self) -> float:
        return self.nyquist if self.high_freq is None else self.high_freq

    @property
    def input_size(self) -> tuple[int, int]:
        """Spectrogram size ``(num_mel_bins, target_length)`` the encoder expects."""
        return self.num_mel_bins, self.target_length

    @model_validator(mode="before")
    @classmethod
    def _rename_legacy_depth(cls, values: Any) -> Any:
        # Earlier builds called the block count ``depth`` (every other modality says ``num_layers``); saved
        # models and recipes written then still load, with a warning.
        if isinstance(values, dict) and "depth" in values:
            if "num_layers" in values:
                raise ValueError("give num_layers only (depth is its old name)")
            warnings.warn("audio config key 'depth' is now 'num_layers'; rename it", FutureWarning, stacklevel=2)
            values = {("num_layers" if key == "depth" else key): value for key, value in values.items()}
        return values

    @model_validator(mode="after")
    def _check_consistency(self) -> AudioConfig:
        if self.window_samples < 2 or self.shift_samples < 1:
            raise ValueError(f"frame_length_ms/frame_shift_ms give a {self.window_samples}-sample window and "
                             f"{self.shift_samples}-sample shift at {self.sample_rate} Hz; make them longer")
        if self.max_sample_rate < self.sample_rate:
            raise ValueError(f"max_sample_rate {self.max_sample_rate} is below sample_rate {self.sample_rate}")
        if self.clip_samples < self.window_samples:
            raise ValueError(f"clip_duration {self.clip_duration}s is shorter than one analysis window "
                             f"({self.frame_length_ms} ms)")
        if not self.low_freq < self.mel_high_freq <= self.nyquist:
            raise ValueError(f"need low_freq < high_freq <= Nyquist ({self.nyquist} Hz); got low_freq "
                             f"{self.low_freq}, high_freq {self.mel_high_freq}")
        if self.num_mel_bins > self.fft_size // 2:
            raise ValueError(f"num_mel_bins {self.num_mel_bins} exceeds the {self.fft_size // 2} FFT bins; "
                             f"use fewer mel bins or a longer frame_length_ms")
        if min(self.input_size) < self.patch_size:
            raise ValueError(f"spectrogram {self.input_size} (num_mel_bins, target_length) is smaller than "
                             f"patch_size {self.patch_size}")
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")
        if not math.isfinite(self.mean) or not math.isfinite(self.pad_value):
            raise ValueError("mean and pad_value must be finite")
        return self
