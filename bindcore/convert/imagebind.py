"""``bindcore convert imagebind``: Meta's ImageBind checkpoint → one bindcore directory per modality.

Layout written under ``OUT/``:

* ``OUT/anchor``: the vision and text towers as a standard open_clip ``local-dir:`` model;
* ``OUT/vision``, ``OUT/text`` (and ``OUT/video`` when bind-vision provides it): bindcore modalities wrapping
  that anchor, saved as their config (the anchor is referenced by absolute path; ``BindModel.load`` also finds a
  moved ``OUT``'s sibling ``anchor`` folder) plus, for video, ImageBind's Conv3d stem;
* ``OUT/audio``, ``OUT/depth``, ``OUT/thermal``, ``OUT/imu``: built by each plugin's
  ``Modality.from_imagebind`` (found through the registry; the core imports no modality code) and
  written with ``Modality.save``;
* ``OUT/conversion.json``: what was converted, from where, with which head counts, and the licence.

The checkpoint is memory-mapped and converted one modality at a time, so peak memory is about one
modality's weights, never two copies of the whole checkpoint (measured: ``benchmarks/bench_embed_convert.py``).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bindcore
from bindcore.convert.checkpoint import (
    IMAGEBIND_HUGE_HEADS,
    IMAGEBIND_LICENSE,
    IMAGEBIND_MODALITIES,
    load_checkpoint,
    split_by_modality,
)
from bindcore.convert.open_clip_anchor import imagebind_to_open_clip, write_open_clip_dir
from bindcore.convert.safetensors_stream import write_safetensors
from bindcore.errors import ConfigError, UnknownModalityError

ANCHOR_DIR = "anchor"
ANCHOR_TOWERS = ("vision", "text")
#: Modalities computed by the anchor: saved as configs that point at OUT/anchor. ``video`` (bind-vision) also
#: keeps ImageBind's Conv3d vision stem, which the 2-D open_clip stem cannot hold.
ANCHOR_MODALITIES = ("vision", "text", "video")
REPORT_FILE = "conversion.json"
VISION_STEM_KEY = "modality_preprocessors.vision.rgbt_stem.proj.1.weight"


@dataclass
class ConversionReport:
    """Where each modality went, and why any was not converted."""

    output: Path
    written: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"output": str(self.output), "written": {k: str(v) for k, v in self.written.items()},
                "skipped": dict(self.skipped)}


def resolve_heads(overrides: Mapping[str, int] | None) -> dict[str, int]:
    """ImageBind huge's head counts, updated by ``overrides`` (unknown modality names are rejected)."""
    heads = dict(IMAGEBIND_HUGE_HEADS)
    for name, value in (overrides or {}).items():
        if name not in heads:
            raise ConfigError(f"--heads: unknown modality {name!r} (valid: {', '.join(IMAGEBIND_MODALITIES)})")
        if int(value) < 1:
            raise ConfigError(f"--heads {name}={value}: must be a positive integer")
        heads[name] = int(value)
    return heads


def _prepare_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out} is not empty; choose another directory or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)


def _replace_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def convert_imagebind(source: str | os.PathLike[str], out: str | os.PathLike[str], *,
                      heads: Mapping[str, int] | None = None, modalities: Sequence[str] | None = None,
                      overwrite: bool = False, license: str = IMAGEBIND_LICENSE, image_size: int | None = None,
                      log: Callable[[str], None] | None = None) -> ConversionReport:
    """Convert an ImageBind checkpoint at ``source`` into bindcore directories under ``out``.

    ``modalities`` limits the conversion (default: every modality in the checkpoint; those whose plugin is
    not installed are skipped and reported). Explicitly requested modalities that cannot be converted raise.
    ``image_size`` gives the anchor's image tower another input size (position embeddings resized as ImageBind
    does on the fly; e.g. 280 reproduces the reference on 280-px inputs).
    """
    say = log or (lambda message: None)
    source_path, out_path = Path(source), Path(out)
    head_counts = resolve_heads(heads)
    state = load_checkpoint(source_path)
    groups = split_by_modality(state)
    requested = list(modalities) if modalities else [m for m in IMAGEBIND_MODALITIES if m in groups]
    requested += [] if modalities else sorted(set(groups) - set(IMAGEBIND_MODALITIES))
    if not modalities and "vision" in groups and "video" in bindcore.list_modalities():
        requested.append("video")  # ImageBind's vision branch embeds videos too
    strict = modalities is not None
    for name in requested:
        if name not in groups and not (name == "video" and "vision" in groups):
            raise ConfigError(f"the checkpoint has no {name!r} entries (it has: {', '.join(sorted(groups))})")
    _prepare_output(out_path, overwrite)
    origin = f"ImageBind checkpoint {source_path.name}"
    report = ConversionReport(out_path)

    anchor_needed = [m for m in ANCHOR_MODALITIES if m in requested]
    if anchor_needed:
        missing = [m for m in ANCHOR_TOWERS if m not in groups]
        if missing:
            reason = f"the anchor needs both towers but the checkpoint lacks {', '.join(missing)}"
            if strict:
                raise ConfigError(reason)
            report.skipped.update({m: reason for m in anchor_needed})
        else:
            say("anchor: vision + text towers → open_clip")
            anchor_dir = out_path / ANCHOR_DIR
            _replace_dir(anchor_dir)
            config, anchor_state = imagebind_to_open_clip(groups["vision"], groups["text"],
                                                          vision_heads=head_counts["vision"],
                                                          text_heads=head_counts["text"], image_size=image_size)
            write_open_clip_dir(anchor_dir, config, anchor_state, license=license, source=origin)
            del anchor_state
            report.written[ANCHOR_DIR] = anchor_dir
            for name in anchor_needed:
                _convert_one(name, report, strict, say,
                             lambda cls, target, n=name: _write_anchor_modality(cls, n, target, anchor_dir,
                                                                                groups["vision"], license, origin))

    for name in requested:
        if name in ANCHOR_MODALITIES:
            continue
        options = {"num_heads": head_counts[name]} if name in head_counts else {}
        _convert_one(name, report, strict, say,
                     lambda cls, target, sd=groups[name], kw=options: _write_plugin_modality(cls, target, sd, kw,
                                                                                            license, origin))

    _finish(report, origin, license, head_counts, out_path, say)
    return report


def _convert_one(name: str, report: ConversionReport, strict: bool, say: Callable[[str], None],
                 write: Callable[[type, Path], None]) -> None:
    """Write modality ``name`` to ``OUT/<name>`` with ``write(cls, target)``; skip or raise when impossible."""
    try:
        cls = bindcore.modality_class(name)
    except UnknownModalityError:
        reason = f"no installed plugin provides {name!r} (pip install bind-{name})"
        if strict:
            raise ConfigError(reason) from None
        report.skipped[name] = reason
        say(f"{name}: skipped ({reason})")
        return
    say(f"{name}: converting with {cls.__module__}.{cls.__name__}")
    target = report.output / name
    _replace_dir(target)
    try:
        write(cls, target)
    except NotImplementedError as error:
        if strict:
            raise ConfigError(f"{name}: {error}") from None
        report.skipped[name] = str(error)
        say(f"{name}: skipped ({error})")
        return
    report.written[name] = target
    gc.collect()


def _write_plugin_modality(cls: type, target: Path, state: Mapping[str, Any], options: Mapping[str, Any],
                           license: str, origin: str) -> None:
    """The plugin's ``from_imagebind`` builds the module (one modality in memory at a time); ``save`` writes it."""
    module = cls.from_imagebind(state, **options)
    module.weights_license, module.weights_source = license, origin
    module.save(target, license=license, source=origin)


def _write_anchor_modality(cls: type, name: str, target: Path, anchor_dir: Path, vision: Mapping[str, Any],
                           license: str, origin: str) -> None:
    """Save a ``vision``/``text``/``video`` modality whose config points at the converted anchor in ``anchor_dir``.

    Anchor-tower modalities keep the anchor out of their state dict (the config names its source), so their saved
    directory is the validated config plus the few tensors of their own (none for vision/text; ImageBind's
    Conv3d stem for video). It is written directly rather than by building the module, which would load the whole
    anchor (≈ 4 GB for ViT-H) just to save a config. ``OUT/anchor`` is referenced by absolute path.
    """
    from bindcore.io import CONFIG_FILE, WEIGHTS_FILE

    fields = getattr(getattr(cls, "Config", None), "model_fields", {})
    if "anchor" not in fields:
        raise NotImplementedError(f"the installed {name!r} plugin has no 'anchor' config field, so it cannot wrap "
                                  f"the converted open_clip anchor (which is in {anchor_dir})")
    config = cls.Config(anchor={"model": f"local-dir:{anchor_dir.resolve()}"})
    own: dict[str, Any] = {}
    if name == "video":  # bind-vision's VideoModality keeps the real temporal kernel the 2-D anchor stem lacks
        own["temporal_patch_embed"] = vision[VISION_STEM_KEY]
    target.mkdir(parents=True)
    write_safetensors(target / WEIGHTS_FILE, own)
    meta = {
        "format": "bindcore-modality/1",
        "modality": name,
        "config": config.model_dump(mode="json"),
        "bindcore_version": bindcore.__version__,
        "license": license,
        "source": origin,
    }
    (target / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def _finish(report: ConversionReport, origin: str, license: str, heads: Mapping[str, int], out: Path,
            say: Callable[[str], None]) -> None:
    summary = {
        "format": "bindcore-imagebind-conversion/1",
        "source": origin,
        "license": license,
        "license_note": "Meta's ImageBind weights are licensed CC-BY-NC 4.0: non-commercial use only.",
        "num_heads": dict(heads),
        "bindcore_version": bindcore.__version__,
        **report.as_dict(),
    }
    (out / REPORT_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    say(f"wrote {', '.join(sorted(report.written))} to {out}"
        + (f"; skipped {', '.join(sorted(report.skipped))}" if report.skipped else ""))


__all__ = ["ConversionReport", "convert_imagebind", "resolve_heads"]
