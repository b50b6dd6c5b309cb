"""Fixtures of the bind-audio tests: tiny configs, temporary audio files, the shared parity vectors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[3]


def parity_dir() -> Path | None:
    root = Path(os.environ.get("BINDCORE_PARITY_DIR") or REPO_ROOT.parent / "shared" / "imagebind_vectors")
    return root if (root / "generation_meta.json").is_file() else None


@pytest.fixture(scope="session")
def vectors() -> Path:
    root = parity_dir()
    if root is None:
        pytest.skip("ImageBind parity vectors not found: set BINDCORE_PARITY_DIR or put them in "
                    "<repo>/../shared/imagebind_vectors")
    return root


@pytest.fixture(scope="session")
def generation_meta(vectors: Path) -> dict:
    return json.loads((vectors / "generation_meta.json").read_text())


@pytest.fixture(scope="session")
def reference_audio(vectors: Path, generation_meta: dict) -> list[tuple[str, Path, np.ndarray]]:
    """``(name, input wav, golden (3, 1, 128, 204))`` for every reference audio vector, in ``audio_order``."""
    items = []
    for name in generation_meta["audio_order"]:
        path = next(p for folder in ("fixtures/audio", "fixtures/assets")
                    if (p := vectors / folder / f"{name}.wav").is_file())
        items.append((name, path, np.load(vectors / "preprocessed" / "audio" / f"{name}.npy")))
    return items


TINY_MODEL = {"width": 32, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "drop_path": 0.0}
# A small front end too: 8 kHz, 1 s clips, 32 mel bins, ~100 frames (what the demo uses).
TINY_AUDIO = {"sample_rate": 8000, "clip_duration": 1.0, "clips_per_item": 2, "num_mel_bins": 32,
              "target_length": 100, **TINY_MODEL}


@pytest.fixture
def tiny() -> dict:
    """Options of a tiny audio modality (8 kHz, 2 x 1 s clips, 32 x 100 log-mel, 1-block trunk)."""
    return dict(TINY_AUDIO)


@pytest.fixture
def write_wav(tmp_path: Path):
    """``write_wav(name, samples (channels, n) or (n,), rate, subtype="PCM_16") -> Path``."""

    def write(name: str, samples: np.ndarray, rate: int, subtype: str | None = "PCM_16") -> Path:
        path = tmp_path / name
        data = samples.T if samples.ndim == 2 else samples
        sf.write(str(path), data, rate, subtype=subtype)
        return path

    return write


def _tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1, amplitude: float = 0.3) -> np.ndarray:
    """A deterministic test waveform ``(channels, n)``: a tone plus a little seeded noise, per-channel phase."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(n + rate + channels)
    rows = [amplitude * np.sin(2 * np.pi * freq * (1 + 0.1 * c) * t + c) + 0.01 * rng.standard_normal(n)
            for c in range(channels)]
    return np.stack(rows).astype(np.float32)


@pytest.fixture
def tone():
    """``tone(seconds, rate, freq=440, channels=1, amplitude=0.3) -> (channels, n) float32``."""
    return _tone
