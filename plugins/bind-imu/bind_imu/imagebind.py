"""Loading ImageBind's IMU branch (``modality_{preprocessors,trunks,heads}.imu.*``) into :class:`ImuModality`.

Only key names change. The postprocessor's fixed ``log_logit_scale`` (×5) is dropped: it scales every
embedding by the same factor, so the unit-norm direction bindcore returns is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import Tensor

from bind_imu.config import NUM_CHANNELS
from bindcore import ConfigError

if TYPE_CHECKING:
    from bind_imu.modality import ImuModality

PRE = "modality_preprocessors.imu."
TRUNK = "modality_trunks.imu."
HEAD = "modality_heads.imu."
POST = "modality_postprocessors.imu."

#: ImageBind key (after its prefix) → bindcore key, for everything outside the trunk blocks.
_FIXED_KEYS = {
    PRE + "cls_token": "encoder.cls_token",
    PRE + "pos_embed": "encoder.pos_embed",
    PRE + "imu_stem.proj.weight": "encoder.proj.weight",
    PRE + "imu_stem.norm_layer.weight": "encoder.stem_norm.weight",
    PRE + "imu_stem.norm_layer.bias": "encoder.stem_norm.bias",
    HEAD + "0.weight": "head.norm.weight",
    HEAD + "0.bias": "head.norm.bias",
    HEAD + "3.weight": "head.proj.weight",  # .2 is the Dropout(0.5), .1 SelectElement(0): no parameters
}


def rename_imagebind_keys(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The IMU entries of an ImageBind state dict under bindcore names (other modalities are ignored)."""
    renamed: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key in _FIXED_KEYS:
            renamed[_FIXED_KEYS[key]] = value
        elif key.startswith(TRUNK + "blocks."):
            renamed["encoder.trunk." + key[len(TRUNK):]] = value
        elif key.startswith((PRE, TRUNK, HEAD)):
            raise ConfigError(f"unexpected ImageBind IMU key {key!r}: this checkpoint's layout is not the "
                              f"reference one (expected imu_stem, cls_token, pos_embed, blocks.*, heads .0/.3)")
    return renamed


def infer_config(renamed: Mapping[str, Tensor]) -> dict[str, Any]:
    """Encoder sizes implied by the tensor shapes."""
    missing = [k for k in _FIXED_KEYS.values() if k not in renamed]
    if missing:
        raise ConfigError(f"the state dict lacks ImageBind IMU entries for {', '.join(missing)}; pass the "
                          f"keys starting with {PRE!r}, {TRUNK!r} and {HEAD!r}")
    width, stem_inputs = renamed["encoder.proj.weight"].shape
    if stem_inputs % NUM_CHANNELS:
        raise ConfigError(f"stem weight has {stem_inputs} inputs, not a multiple of {NUM_CHANNELS} channels")
    patch_size = stem_inputs // NUM_CHANNELS
    from bindcore.convert.checkpoint import count_blocks

    num_layers = count_blocks(renamed, "encoder.trunk")
    if num_layers and tuple(renamed["encoder.trunk.blocks.0.mlp.fc1.weight"].shape) != (4 * width, width):
        raise ConfigError("trunk MLP is not 4x wide, which bindcore.nn.Transformer assumes")
    return {
        "width": int(width),
        "patch_size": int(patch_size),
        "window_steps": int((renamed["encoder.pos_embed"].shape[1] - 1) * patch_size),
        "num_layers": num_layers,
        "embed_dim": int(renamed["head.proj.weight"].shape[0]),
    }


def load_imagebind(cls: type[ImuModality], state_dict: Mapping[str, Tensor], **config: Any) -> ImuModality:
    """Build ``cls`` from ImageBind weights; sizes come from shapes, ``config`` gives the rest (e.g. num_heads)."""
    renamed = rename_imagebind_keys(state_dict)
    inferred = infer_config(renamed)
    clashes = {k: (config[k], v) for k, v in inferred.items() if k in config and config[k] != v}
    if clashes:
        raise ConfigError("config disagrees with the checkpoint's shapes: " + ", ".join(
            f"{k}={given} but the weights have {found}" for k, (given, found) in clashes.items()))
    modality = cls(**{**config, **inferred})
    result = modality.load_state_dict(renamed, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ConfigError(f"ImageBind IMU weights do not fit: missing {result.missing_keys}, "
                          f"unexpected {result.unexpected_keys}")
    modality.weights_source = "imagebind"
    return modality
