"""The ``llvip`` training data kind: an LLVIP tree read in place (:mod:`bind_thermal.datasets.llvip`), each
visible image paired with its infrared twin (same file name).

    modalities.thermal.data: {kind: llvip, root: $BINDCORE_DATA/LLVIP, split: train}

Images without a twin are left out and listed in ``RUN/skipped.jsonl``.
"""

from __future__ import annotations

from bindcore.data.kinds import DataKind, DataRequest, ListedSource
from bindcore.errors import ConfigError


def build(request: DataRequest) -> ListedSource:
    from bind_thermal.datasets.llvip import pairs

    if request.options:
        raise ConfigError(f"{request.where}.options: kind llvip takes no options (got "
                          f"{', '.join(sorted(request.options))})")
    if request.root is None:
        raise ConfigError(f"{request.where}.root: kind llvip needs the LLVIP/ folder (infrared/, visible/)")
    split = request.split or "train"
    if split not in ("train", "test"):
        raise ConfigError(f"{request.where}.split: {split!r}; LLVIP has train and test")
    found = pairs(request.root, split=split)
    return ListedSource(
        request.modality,
        items=[{"image": str(p.visible), request.modality: str(p.infrared)} for p in found.pairs],
        names=[p.name for p in found.pairs], origin=f"LLVIP {split} ({request.root})",
        unusable=[{"where": p.source, "reason": p.reason} for p in found.problems])


LLVIP = DataKind("llvip", build, "LLVIP tree: visible/infrared pairs by file name (root, split)")
