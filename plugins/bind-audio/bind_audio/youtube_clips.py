"""Finding the user's local copies of YouTube segments (AudioSet, VGGSound, AudioCaps) by the names downloaders
give them. The datasets publish only (YouTube id, start second) lists; the audio is whatever the user fetched.

A segment ``(ytid, start[, end])`` matches a file under the audio folder (searched recursively) whose suffix is
one of :data:`bind_audio.inputs.SUPPORTED_SUFFIXES` and whose stem is one of

* ``<ytid>`` or ``Y<ytid>`` (AudioSet's balanced/eval archives: ``Y--4gqARaEJE.wav``),
* ``<ytid>_<start>`` with ``<start>`` an integer second (``_30``), six-digit zero-padded (``_000030``,
  VGGSound's release), as the list writes it (``_30.000``), with one decimal (``_30.0``) or in milliseconds
  (``_30000``),
* ``<ytid>_<start>_<end>`` with the same forms for both (``--4gqARaEJE_0.000_10.000``, ``_30000_40000``).

Several files matching one segment are a problem (ambiguous), never a silent pick.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from bind_audio.inputs import SUPPORTED_SUFFIXES


def _second_forms(value: str) -> list[str]:
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return [text]
    forms = [text, f"{seconds:.1f}", f"{seconds:.3f}", f"{round(seconds * 1000)}"]
    if seconds == int(seconds):
        forms += [str(int(seconds)), f"{int(seconds):06d}"]
    return list(dict.fromkeys(forms))


def candidate_stems(ytid: str, start: str | None = None, end: str | None = None) -> list[str]:
    """The file stems a segment may have, most specific first."""
    stems = []
    if start is not None:
        starts = _second_forms(start)
        if end is not None:
            ends = _second_forms(end)
            stems += [f"{ytid}_{s}_{e}" for s in starts for e in ends]
        stems += [f"{ytid}_{s}" for s in starts]
    stems += [ytid, f"Y{ytid}"]
    return list(dict.fromkeys(stems))


class ClipIndex:
    """The audio files under a folder, by stem."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.by_stem: dict[str, list[Path]] = defaultdict(list)
        for parent, subfolders, files in os.walk(self.folder):
            subfolders.sort()
            for name in sorted(files):
                path = Path(parent) / name
                if path.suffix.lower() in SUPPORTED_SUFFIXES:
                    self.by_stem[path.stem].append(path)

    def __len__(self) -> int:
        return sum(len(paths) for paths in self.by_stem.values())

    def find(self, ytid: str, start: str | None = None, end: str | None = None) -> tuple[Path | None, str]:
        """The one file of a segment, or (None, why not)."""
        for stem in candidate_stems(ytid, start, end):
            paths = self.by_stem.get(stem, [])
            if len(paths) == 1:
                return paths[0], ""
            if len(paths) > 1:
                listed = ", ".join(str(p.relative_to(self.folder)) for p in paths[:3])
                return None, f"ambiguous: {len(paths)} files named {stem}.* ({listed})"
        return None, f"no local clip (looked for {', '.join(candidate_stems(ytid, start, end)[:3])}, ... under " \
                     f"{self.folder})"


__all__ = ["ClipIndex", "candidate_stems"]
