"""Converting third-party checkpoints into bindcore directories (currently: Meta's ImageBind)."""

from bindcore.convert.checkpoint import (
    IMAGEBIND_HUGE_HEADS,
    IMAGEBIND_LICENSE,
    IMAGEBIND_MODALITIES,
    load_checkpoint,
    split_by_modality,
)
from bindcore.convert.imagebind import ConversionReport, convert_imagebind, resolve_heads
from bindcore.convert.open_clip_anchor import (
    OPEN_CLIP_CONFIG_FILE,
    OPEN_CLIP_WEIGHTS_FILE,
    imagebind_to_open_clip,
    read_open_clip_license,
    write_open_clip_dir,
)
from bindcore.convert.pos_embed import resize_pos_embed_like_imagebind
from bindcore.safetensors_io import write_safetensors

__all__ = [
    "IMAGEBIND_HUGE_HEADS",
    "IMAGEBIND_LICENSE",
    "IMAGEBIND_MODALITIES",
    "OPEN_CLIP_CONFIG_FILE",
    "OPEN_CLIP_WEIGHTS_FILE",
    "ConversionReport",
    "convert_imagebind",
    "imagebind_to_open_clip",
    "load_checkpoint",
    "read_open_clip_license",
    "resize_pos_embed_like_imagebind",
    "resolve_heads",
    "split_by_modality",
    "write_open_clip_dir",
    "write_safetensors",
]
