"""ImageBind checkpoint entries (``modality_*.audio.*``) → :class:`~bind_audio.AudioModality` weights."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from bind_audio.config import AudioConfig
from bindcore import ConfigError
from bindcore.nn import patch_grid

PRE = "modality_preprocessors.audio."
TRUNK = "modality_trunks.audio."
HEAD = "modality_heads.audio."
POST = "modality_postprocessors.audio."

# ImageBind name (after the modality prefix) → ours. Trunk blocks keep their names.
_RENAMES = {
    PRE + "cls_token": "encoder.cls_token",
    PRE + "rgbt_stem.proj.weight": "encoder.proj.weight",
    PRE + "rgbt_stem.norm_layer.weight": "encoder.stem_norm.weight",
    PRE + "rgbt_stem.norm_layer.bias": "encoder.stem_norm.bias",
    PRE + "pos_embedding_helper.pos_embed": "encoder.pos_embed",
    HEAD + "0.weight": "head.norm.weight",
    HEAD + "0.bias": "head.norm.bias",
    HEAD + "2.weight": "head.proj.weight",
}
LOGIT_SCALE_KEY = POST + "1.log_logit_scale"


def _require(state_dict: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in state_dict:
        raise ConfigError(f"ImageBind state_dict has no {key!r}: pass the audio entries of an ImageBind checkpoint "
                          f"(keys starting with {PRE!r}, {TRUNK!r}, {HEAD!r})")
    return state_dict[key]


def infer_config(state_dict: Mapping[str, Tensor], **config: Any) -> dict[str, Any]:
    """Config options implied by tensor shapes, merged with (and checked against) the given ``config``."""
    cls_token = _require(state_dict, PRE + "cls_token")
    stem = _require(state_dict, PRE + "rgbt_stem.proj.weight")
    pos = _require(state_dict, PRE + "pos_embedding_helper.pos_embed")
    head = _require(state_dict, HEAD + "2.weight")
    from bindcore.convert.checkpoint import count_blocks

    inferred: dict[str, Any] = {
        "width": int(cls_token.shape[-1]),
        "num_layers": count_blocks(state_dict, TRUNK.rstrip(".")),
        "patch_size": int(stem.shape[-1]),
        "embed_dim": int(head.shape[0]),
    }
    if LOGIT_SCALE_KEY in state_dict:
        inferred["logit_scale"] = float(math.exp(float(state_dict[LOGIT_SCALE_KEY])))
    defaults = AudioConfig.model_fields
    mel_bins = config.get("num_mel_bins", defaults["num_mel_bins"].default)
    frames = config.get("target_length", defaults["target_length"].default)
    patches = int(pos.shape[1]) - 1
    # The conv weight does not record the stride: find the stride(s) whose patch grid matches pos_embed.
    strides = [s for s in range(1, inferred["patch_size"] + 1)
               if math.prod(patch_grid((mel_bins, frames), inferred["patch_size"], s)) == patches]
    if "patch_stride" in config:
        strides = [config["patch_stride"]] if config["patch_stride"] in strides else []
    if len(strides) != 1:
        raise ConfigError(f"cannot match the checkpoint's {patches} patches to a ({mel_bins}, {frames}) spectrogram "
                          f"with patch size {inferred['patch_size']} (candidate strides: {strides or 'none'}); "
                          f"pass num_mel_bins, target_length and patch_stride")
    inferred["patch_stride"] = strides[0]
    for key, value in inferred.items():
        if key in config and config[key] != value and key != "logit_scale":
            raise ConfigError(f"{key}={config[key]!r} disagrees with the checkpoint, which implies {value!r}")
    return {**config, **inferred, "num_mel_bins": mel_bins, "target_length": frames}


def convert_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename the audio entries to this plugin's parameter names (other modalities' keys are ignored)."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key in _RENAMES:
            out[_RENAMES[key]] = value
        elif key.startswith(TRUNK + "blocks."):
            out["encoder.trunk." + key[len(TRUNK):]] = value
        elif key.startswith(TRUNK):
            raise ConfigError(f"unexpected audio trunk entry {key!r} (ImageBind's audio trunk has blocks only)")
    return out
