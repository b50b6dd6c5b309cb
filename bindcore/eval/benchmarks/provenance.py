"""What a model directory says about how a modality was bound: the ``emergent`` flag of a benchmark result.

A result is *emergent* when the measured modality never saw the benchmark's other side (text prompts, captions)
in training: it was bound with (image, modality) pairs only and meets text through the frozen anchor.
"""

from __future__ import annotations

import os
from pathlib import Path

from bindcore.errors import ConfigError

ANCHOR_TOWERS = ("vision", "text")


def binding_of(model_dir: str | os.PathLike[str], modality: str) -> tuple[bool | None, str]:
    """``(emergent, why)`` for ``modality`` of ``model_dir``; ``emergent`` is ``None`` when the directory does not
    say (a bare ``Modality.save`` folder)."""
    from bindcore.convert.imagebind import REPORT_FILE
    from bindcore.inference import model_root

    if modality in ANCHOR_TOWERS:
        return False, f"{modality!r} is a tower of the anchor, trained on image-text pairs"
    base = Path(model_dir)
    root = model_root(base)
    if (root / REPORT_FILE).is_file():
        return True, (f"converted from ImageBind ({REPORT_FILE}): ImageBind binds every modality with image "
                      f"pairs only")
    if root != base and (base / "recipe.yaml").is_file():
        return _from_recipe(base / "recipe.yaml", modality)
    return None, (f"{base} records neither a conversion ({REPORT_FILE}) nor a training recipe (recipe.yaml), so "
                  f"how {modality!r} was bound is unknown")


def _from_recipe(path: Path, modality: str) -> tuple[bool | None, str]:
    import yaml

    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path} cannot be read ({error}); it is the run's recipe") from None
    block = (recipe.get("modalities") or {}).get(modality)
    if not isinstance(block, dict):
        return None, f"{path} does not train {modality!r}"
    kind = (block.get("data") or {}).get("kind", "toy")
    # Every data kind of a recipe (toy, manifest, webdataset) yields (image, modality) pairs: the trainer's sources
    # read the keys ("image", modality) and nothing else, so a trained modality never sees text.
    return True, f"trained by `bindcore train` on {kind} (image, {modality}) pairs ({path.name})"
