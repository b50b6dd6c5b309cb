"""Sample rates beyond what any audio format uses are refused before the resampler builds its tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from bind_audio import AudioArray, AudioConfig
from bind_audio import resample as resample_module
from bind_audio.preprocess import preprocess

from bindcore import InputError


def test_wav_declaring_ten_megahertz_is_refused_before_resampling(tmp_path: Path, monkeypatch) -> None:
    # 10,000,019 Hz is prime: its phase table to 16 kHz has 16,000 x 7,577 weights (+2.9 GB while built).
    path = tmp_path / "odd.wav"
    sf.write(path, np.zeros(300_000, np.float32), 10_000_019, subtype="PCM_16")
    monkeypatch.setattr(resample_module, "_phase_table", None)  # any use of it would raise TypeError
    with pytest.raises(InputError) as info:
        preprocess([path], AudioConfig())
    message = str(info.value)
    assert "odd.wav" in message and "10000019" in message and "max_sample_rate" in message


def test_in_memory_rate_above_the_limit_is_refused() -> None:
    with pytest.raises(InputError, match="max_sample_rate=48000"):
        preprocess([AudioArray(np.zeros(96_001, np.float32), 96_001)], AudioConfig(max_sample_rate=48_000))


def test_rates_up_to_the_limit_are_accepted() -> None:
    out = preprocess([AudioArray(np.zeros(384_000, np.float32), 384_000)], AudioConfig())
    assert np.isfinite(out.numpy()).all()


def test_max_sample_rate_must_allow_the_target_rate() -> None:
    with pytest.raises(ValueError, match="max_sample_rate"):
        AudioConfig(sample_rate=16_000, max_sample_rate=8_000)
