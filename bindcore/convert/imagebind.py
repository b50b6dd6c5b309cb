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

Every option (head counts, modality names, image size, installed plugins) is checked before anything is written;
the whole of ``OUT`` is then written into a hidden sibling (``.OUT.tmp-*``) and renamed into place when complete,
so a failed conversion never leaves a half-written ``OUT`` for ``BindModel.load`` or ``bindcore embed`` to use.

The checkpoint is memory-mapped and converted one modality at a time, so peak memory is about one
modality's weights, never two copies of the whole checkpoint (measured: ``benchmarks/bench_embed_convert.py``).
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bindcore
from bindcore.convert.checkpoint import (
    IMAGEBIND_HUGE_HEADS,
    IMAGEBIND_LICENSE,
    IMAGEBIND_MODALITIES,
    check_head_counts,
    load_checkpoint,
    require,
    split_by_modality,
)
from bindcore.convert.open_clip_anchor import check_image_size, imagebind_to_open_clip, write_open_clip_dir
from bindcore.errors import BindcoreError, ConfigError, UnknownModalityError
from bindcore.io import atomic_directory
from bindcore.safetensors_io import write_safetensors

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


def _check_output(out: Path, overwrite: bool) -> bool:
    """Refuse an unusable ``OUT`` before any work; return whether an existing ``OUT`` is to be replaced."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out} is not empty; choose another directory or pass --overwrite")
    return out.exists() or out.is_symlink()


def _find_plugins(requested: Sequence[str], strict: bool) -> tuple[dict[str, type], dict[str, str]]:
    """The class converting each requested modality, and why the others cannot be converted.

    Explicitly requested modalities (``strict``) that cannot be converted raise here, before anything is written.
    """
    from bindcore.modality_base import Modality

    classes: dict[str, type] = {}
    unusable: dict[str, str] = {}
    for name in requested:
        try:
            cls = bindcore.modality_class(name)
        except UnknownModalityError:
            unusable[name] = f"no installed plugin provides {name!r} (pip install bind-{name})"
            continue
        if name in ANCHOR_MODALITIES:
            if "anchor" not in getattr(getattr(cls, "Config", None), "model_fields", {}):
                unusable[name] = (f"the installed {name!r} plugin has no 'anchor' config field, so it cannot wrap "
                                  f"the converted open_clip anchor")
                continue
        elif getattr(cls.from_imagebind, "__func__", None) is Modality.from_imagebind.__func__:
            unusable[name] = f"the installed {name!r} plugin ({cls.__module__}) cannot load ImageBind weights"
            continue
        classes[name] = cls
    if strict and unusable:
        name, reason = next(iter(unusable.items()))
        raise ConfigError(f"--modality {name}: {reason}")
    return classes, unusable


def convert_imagebind(source: str | os.PathLike[str], out: str | os.PathLike[str], *,
                      heads: Mapping[str, int] | None = None, modalities: Sequence[str] | None = None,
                      overwrite: bool = False, license: str = IMAGEBIND_LICENSE, image_size: int | None = None,
                      log: Callable[[str], None] | None = None) -> ConversionReport:
    """Convert an ImageBind checkpoint at ``source`` into bindcore directories under ``out``.

    ``modalities`` limits the conversion (default: every modality in the checkpoint; those whose plugin is
    not installed are skipped and reported). Explicitly requested modalities that cannot be converted raise.
    ``image_size`` gives the anchor's image tower another input size (position embeddings resized as ImageBind
    does on the fly; e.g. 280 reproduces the reference on 280-px inputs).

    Every option is checked before anything is written. The output is written into a hidden sibling of ``out``
    and renamed into place when complete: a failure leaves ``out`` as it was (with ``overwrite``, an existing
    ``out`` is replaced, as a whole, only by a complete conversion).
    """
    say = log or (lambda message: None)
    source_path, out_path = Path(source), Path(out)
    head_counts = resolve_heads(heads)
    replace = _check_output(out_path, overwrite)
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
    classes, unusable = _find_plugins(requested, strict)
    report = ConversionReport(out_path, skipped=dict(unusable))
    for name, reason in unusable.items():
        say(f"{name}: skipped ({reason})")

    anchor_needed = [m for m in ANCHOR_MODALITIES if m in requested]
    build_anchor = bool(anchor_needed)
    if anchor_needed and (missing := [m for m in ANCHOR_TOWERS if m not in groups]):
        reason = f"the anchor needs both towers but the checkpoint lacks {', '.join(missing)}"
        if strict:
            raise ConfigError(reason)
        report.skipped.update({m: reason for m in anchor_needed})
        build_anchor = False
    plugin_modalities = [m for m in requested if m not in ANCHOR_MODALITIES and m in classes]
    check_head_counts(groups, {m: head_counts[m] for m in [*(ANCHOR_TOWERS if build_anchor else ()),
                                                           *plugin_modalities] if m in head_counts})
    if build_anchor and image_size is not None:
        check_image_size(image_size, require(groups["vision"], VISION_STEM_KEY, 5).shape[-1])

    origin = f"ImageBind checkpoint {source_path.name}"
    # Anchor-tower modalities name the anchor by absolute path: where it will be once renamed into place.
    final_anchor = out_path.resolve() / ANCHOR_DIR
    with atomic_directory(out_path, overwrite=replace) as staging:
        if build_anchor:
            say("anchor: vision + text towers → open_clip")
            config, anchor_state = imagebind_to_open_clip(groups["vision"], groups["text"],
                                                          vision_heads=head_counts["vision"],
                                                          text_heads=head_counts["text"], image_size=image_size)
            write_open_clip_dir(staging / ANCHOR_DIR, config, anchor_state, license=license, source=origin)
            del anchor_state
            report.written[ANCHOR_DIR] = out_path / ANCHOR_DIR
            for name in anchor_needed:
                if name in classes:
                    _convert_one(name, classes[name], staging, report, strict, say,
                                 lambda cls, target, n=name: _write_anchor_modality(
                                     cls, n, target, final_anchor, groups["vision"], license, origin))
        for name in plugin_modalities:
            options = {"num_heads": head_counts[name]} if name in head_counts else {}
            _convert_one(name, classes[name], staging, report, strict, say,
                         lambda cls, target, sd=groups[name], kw=options: _write_plugin_modality(
                             cls, target, sd, kw, license, origin))
        _write_report(report, origin, license, head_counts, staging / REPORT_FILE)
    say(f"wrote {', '.join(sorted(report.written))} to {out_path}"
        + (f"; skipped {', '.join(sorted(report.skipped))}" if report.skipped else ""))
    return report


def _convert_one(name: str, cls: type, staging: Path, report: ConversionReport, strict: bool,
                 say: Callable[[str], None], write: Callable[[type, Path], None]) -> None:
    """Write modality ``name`` to ``staging/<name>`` with ``write(cls, target)``; skip or raise when impossible."""
    say(f"{name}: converting with {cls.__module__}.{cls.__name__}")
    try:
        write(cls, staging / name)
    except NotImplementedError as error:
        if strict:
            raise ConfigError(f"--modality {name}: {error}") from None
        report.skipped[name] = str(error)
        say(f"{name}: skipped ({error})")
        return
    except BindcoreError:
        raise
    except ValueError as error:  # e.g. a plugin's config validation: name the modality instead of a traceback
        raise ConfigError(f"{name}: cannot convert the checkpoint's {name} entries: {error}") from error
    report.written[name] = report.output / name
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
    anchor (≈ 4 GB for ViT-H) just to save a config. ``anchor_dir`` is the absolute path of the final ``OUT/anchor``.
    """
    from bindcore.io import CONFIG_FILE, WEIGHTS_FILE

    config = cls.Config(anchor={"model": f"local-dir:{anchor_dir}"})
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


def _write_report(report: ConversionReport, origin: str, license: str, heads: Mapping[str, int],
                  path: Path) -> None:
    summary = {
        "format": "bindcore-imagebind-conversion/1",
        "source": origin,
        "license": license,
        "license_note": "Meta's ImageBind weights are licensed CC-BY-NC 4.0: non-commercial use only.",
        "num_heads": dict(heads),
        "bindcore_version": bindcore.__version__,
        **report.as_dict(),
    }
    path.write_text(json.dumps(summary, indent=2) + "\n")


__all__ = ["ConversionReport", "convert_imagebind", "resolve_heads"]
