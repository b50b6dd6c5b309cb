"""The frozen anchor: an OpenCLIP image/text model that every other modality is bound to.

One job per module:

* :mod:`~bindcore.anchor.config`: :class:`AnchorConfig`, where the weights come from (the one anchor schema), and
  :func:`tiny_anchor_config`, the one builder of small architectures (tests, the toy demo);
* :mod:`~bindcore.anchor.build`: :func:`load_anchor` (built once per config and shared), weights through open_clip;
* :mod:`~bindcore.anchor.frozen`: :class:`FrozenAnchor`, the one frozen wrapper training, evaluation, the
  embedding cache and inference use;
* :mod:`~bindcore.anchor.sdpa`: the exact SDPA forward of open_clip's standard towers;
* :mod:`~bindcore.anchor.save`: :func:`save_anchor` (a safetensors file or an open_clip ``local-dir:`` folder);
* :mod:`~bindcore.anchor.tower`: :class:`AnchorTowerModality`, the base of bind-vision's and bind-text's modalities;
* :mod:`~bindcore.anchor.pretrain`: CLIP-pretraining a tiny anchor on toy pairs (the demo's stand-in for
  OpenCLIP's web pretraining).
"""

from bindcore.anchor.build import as_anchor_config, build_open_clip, clear_anchor_cache, hub_offline, load_anchor
from bindcore.anchor.config import (
    CLIP_MEAN,
    CLIP_STD,
    DEFAULT_MODEL,
    DEFAULT_PRETRAINED,
    LOCAL_DIR_PREFIX,
    AnchorConfig,
    tiny_anchor_config,
)
from bindcore.anchor.frozen import FrozenAnchor, freeze
from bindcore.anchor.save import save_anchor
from bindcore.anchor.tower import AnchorTowerModality

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DEFAULT_MODEL",
    "DEFAULT_PRETRAINED",
    "LOCAL_DIR_PREFIX",
    "AnchorConfig",
    "AnchorTowerModality",
    "FrozenAnchor",
    "as_anchor_config",
    "build_open_clip",
    "clear_anchor_cache",
    "freeze",
    "hub_offline",
    "load_anchor",
    "save_anchor",
    "tiny_anchor_config",
]
