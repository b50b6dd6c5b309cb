"""One seed hash for everything derived from a seed (toy-world scenes, step plans, substitutes): plain hashlib, so
importing it pulls in neither torch nor numpy."""

from __future__ import annotations

import hashlib


def seed_of(*parts: object) -> int:
    """A 64-bit seed from ``parts`` (joined by their ``str``), the same on every machine, process and run."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "little")
