"""The README's "## Using it" Python block runs as written (offline, in a folder holding the files it reads),
so it cannot drift from the API."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def section_code(title: str) -> str:
    """The first ```python block under the README heading ``## {title}``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else None]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, f"README section {title!r} has no python code block"
    return match.group(1)


def test_using_it_snippet_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    soundfile = pytest.importorskip("soundfile")
    image = pytest.importorskip("PIL.Image")
    code = section_code("Using it")
    rng = np.random.default_rng(0)
    # every file name the snippet quotes is created here; an unknown one fails the test (add it above)
    for name in sorted(set(re.findall(r'"([\w-]+\.\w+)"', code))):
        suffix = Path(name).suffix
        if suffix in (".wav", ".flac"):
            soundfile.write(tmp_path / name, 0.1 * rng.standard_normal(16_000).astype(np.float32), 16_000)
        elif suffix in (".jpg", ".png"):
            image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / name)
        else:
            pytest.fail(f"the snippet reads {name!r}: teach this test to create it")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, f"{README}: ## Using it", "exec"), namespace)
    embeddings = [value for value in namespace.values() if isinstance(value, torch.Tensor) and value.ndim == 2]
    assert embeddings, "the snippet computes no embeddings"
    loss = namespace.get("loss")
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0 and torch.isfinite(loss)
