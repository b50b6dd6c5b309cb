"""The ``sunrgbd`` training data kind: a SUN RGB-D v1 tree read in place (:mod:`bind_depth.datasets.sunrgbd`),
each frame an (RGB image, depth) pair whose depth becomes disparity with the frame's own focal length and its
sensor's baseline, as the paper does.

    modalities.depth.data: {kind: sunrgbd, root: $BINDCORE_DATA/sunrgbd, split: train}

``options``: ``split_file`` (allsplit.mat or a text list; default the toolbox's), ``prefer_infilled`` (read
``depth_bfx/`` before ``depth/``; default true). Listed frames that are missing or malformed are left out and
listed in ``RUN/skipped.jsonl``.
"""

from __future__ import annotations

from bindcore.data.kinds import DataKind, DataRequest, ListedSource
from bindcore.errors import ConfigError

OPTIONS = ("split_file", "prefer_infilled")


def build(request: DataRequest) -> ListedSource:
    from bind_depth.datasets.sunrgbd import SCENE_CLASSES, scan

    unknown = sorted(set(request.options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"{request.where}.options: unknown option(s) {', '.join(unknown)} of kind sunrgbd "
                          f"(it takes {', '.join(OPTIONS)})")
    if request.root is None:
        raise ConfigError(f"{request.where}.root: kind sunrgbd needs the folder SUNRGBD.zip was unpacked in")
    split = request.split or "train"
    if split not in ("train", "test", "all"):
        raise ConfigError(f"{request.where}.split: {split!r}; SUN RGB-D has train, test (or all)")
    found = scan(request.root, split=split, split_file=request.options.get("split_file"),
                 prefer_infilled=bool(request.options.get("prefer_infilled", True)))
    classes = {name: i for i, name in enumerate(SCENE_CLASSES)}
    records = found.records
    return ListedSource(
        request.modality,
        items=[{"image": str(r.rgb), request.modality: r.depth_input()} for r in records],
        names=[r.name for r in records], origin=f"SUN RGB-D {split} ({request.root})",
        labels=[classes.get(r.scene) for r in records],
        unusable=[{"where": p.source, "reason": p.reason} for p in found.problems])


SUNRGBD = DataKind("sunrgbd", build, "SUN RGB-D v1 tree: RGB + depth as disparity per sensor (root, split)")
