"""Options of the {{name}} modality, and ``TINY``, the one small config every test (and a quick demo) uses.

Every field is validated and unknown keys are rejected (bindcore's ModalityConfig). The encoder fields
(``num_steps``, ``patch_size``, ``width``, ``num_layers``, ``num_heads``, ``embed_dim``, ``drop_path``,
``head_dropout``) come from :class:`bindcore.signal_modality.SignalModalityConfig`; this class sets smaller
defaults and adds the preprocessing options (CHANGE THESE for your sensor).
"""

from __future__ import annotations

from typing import Any

from bindcore.signal_modality import SignalModalityConfig
from pydantic import Field

#: Channels of one recording (CHANGE THIS: electrodes, axes, … of your sensor).
NUM_CHANNELS = 3


class {{Name}}Config(SignalModalityConfig):
    """The defaults are a small but useful model; ``TINY`` below is what the tests train."""

    num_steps: int = Field(128, ge=8, le=65536, description="every signal is resampled to num_steps time steps")
    patch_size: int = Field(8, ge=1, description="time steps per patch (token); divides num_steps")
    width: int = Field(128, ge=8, description="transformer width")
    num_layers: int = Field(4, ge=0, description="number of transformer blocks")
    num_heads: int = Field(4, ge=1, description="attention heads (must divide width)")
    value_scale: float = Field(1.0, gt=0, description="raw values are divided by this fixed constant")


#: The smallest config that still binds in the toy world within the conformance kit's 200 steps.
TINY: dict[str, Any] = {"num_steps": 64, "patch_size": 8, "width": 32, "num_layers": 1, "num_heads": 2,
                        "embed_dim": 16}
