"""Training recipes: one YAML file, validated in two stages before any work starts.

Stage 1 checks the top level (run settings, anchor, data, eval) against :class:`Recipe`. Stage 2 checks
each ``modalities.<name>`` block: its reserved ``train`` and ``data`` sub-blocks against
:class:`TrainSettings` / :class:`ModalityData`, and every other key against the plugin's own ``Config``
(found through the registry). Every problem of both stages is collected into one :class:`ConfigError`
whose lines name the YAML path (``modalities.audio.encoder.widht: unknown key, did you mean width?``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bindcore.config import ModalityConfig, format_validation_error
from bindcore.errors import ConfigError

RESERVED_MODALITY_KEYS = ("train", "data")
ANCHOR_MODALITIES = ("vision", "text")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


# -- per-modality training settings (paper Table 9) ---------------------------------------------------
class ImageCrop(_Strict):
    """RandomResizedCrop of the anchor's images (paper: 224 px RRC), resized back to the preprocessed size."""

    scale: tuple[float, float] = Field((0.08, 1.0), description="range of the crop's area, as a fraction of the image")
    ratio: tuple[float, float] = Field((3 / 4, 4 / 3), description="range of the crop's width/height aspect ratio")

    @model_validator(mode="after")
    def _check(self) -> ImageCrop:
        low, high = self.scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {self.ratio}")
        return self


RandAugmentOp = Literal["equalize", "rotate", "posterize", "solarize", "solarize_add", "contrast", "brightness",
                        "sharpness", "shear_x", "shear_y", "translate_x", "translate_y"]


class RandAugment(_Strict):
    """RandAugment of the bound modality's image-like map (paper Table 9 "9/0.5" = timm's ``rand-m9-mstd0.5``).

    See :mod:`bindcore.data.randaugment` for the ops and how each reads a float map.
    """

    num_ops: int = Field(2, ge=1, le=16, description="ops per image (timm's default: 2)")
    magnitude: float = Field(9.0, ge=0, le=10, description="op strength on timm's 0..10 scale")
    magnitude_std: float = Field(0.5, ge=0, description="std of per-op Gaussian noise on the magnitude "
                                                        "(clipped to 0..10)")
    prob: float = Field(0.5, ge=0, le=1, description="probability that each picked op applies (timm's default)")
    ops: tuple[RandAugmentOp, ...] | None = Field(None, min_length=1, description="op pool; null: all ops")


class Augmentation(_Strict):
    """Train-time augmentation, seeded per (seed, step, rank), in the DataLoader workers.

    The masks and erasing act on the bound modality's preprocessed tensor along the axes its plugin declares in
    ``Modality.augment_axes``; a setting whose axes the modality lacks is a recipe error. ``image_crop`` crops the
    anchor's images (only without cached anchor embeddings) and, with ``aligned_crop``, the bound modality's
    tensor with the same relative box.
    """

    random_erase: float = Field(0.0, ge=0, le=1, description="probability of erasing one random rectangle "
                                                             "(needs 'height' and 'width' axes)")
    freq_mask: int = Field(0, ge=0, description="max width of a frequency mask (needs a 'frequency' axis)")
    time_mask: int = Field(0, ge=0, description="max width of a time mask (needs a 'time' axis)")
    color_jitter: float = Field(0.0, ge=0, le=1, description="max relative brightness/contrast change")
    gaussian_noise: float = Field(0.0, ge=0, description="std of additive noise on the normalised tensor")
    image_crop: ImageCrop | None = Field(None, description="RandomResizedCrop of the anchor's images (off: null)")
    aligned_crop: bool | None = Field(None, description="apply the image's crop box to the bound modality too; "
                                                        "default: true when it declares 'height' and 'width'")
    rand_augment: RandAugment | None = Field(None, description="RandAugment of the bound modality's map "
                                                               "(needs 'height' and 'width'; off: null)")

    #: Axis names each setting needs (see ``Modality.augment_axes``).
    AXES_NEEDED: ClassVar[dict[str, tuple[str, ...]]] = {
        "random_erase": ("height", "width"), "freq_mask": ("frequency",), "time_mask": ("time",),
        "aligned_crop": ("height", "width"), "rand_augment": ("height", "width"),
    }

    @model_validator(mode="after")
    def _check(self) -> Augmentation:
        if self.aligned_crop and self.image_crop is None:
            raise ValueError("aligned_crop needs image_crop (the box comes from the image's crop)")
        return self

    @property
    def active(self) -> bool:
        """Whether any augmentation is switched on."""
        return bool(self.random_erase or self.freq_mask or self.time_mask or self.color_jitter
                    or self.gaussian_noise or self.image_crop is not None or self.rand_augment is not None)

    def missing_axes(self, axes: Mapping[str, int]) -> dict[str, list[str]]:
        """Setting → the axis names it needs that ``axes`` lacks (settings that are switched on only)."""
        missing = {}
        for setting, needed in self.AXES_NEEDED.items():
            if getattr(self, setting):
                lacking = [axis for axis in needed if axis not in axes]
                if lacking:
                    missing[setting] = lacking
        return missing


class TrainSettings(_Strict):
    """How one (anchor, modality) pair trains. Defaults are the paper's shared settings."""

    temperature: float = Field(0.07, gt=0, description="InfoNCE temperature (initial value when learnable)")
    learnable_temperature: bool = False
    batch_size: int = Field(64, ge=2, description="global batch size (all ranks, all accumulation steps)")
    grad_accumulation: int = Field(1, ge=1)
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    min_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = Field(1.0, gt=0)
    replication: float = Field(1.0, gt=0, description="sample replication: one epoch = replication × dataset size")
    epochs: float = Field(1.0, gt=0)
    warmup_epochs: float = Field(0.0, ge=0)
    max_steps: int | None = Field(None, ge=1, description="cap on optimiser steps (overrides epochs when smaller)")
    drop_path: float | None = Field(None, ge=0, lt=1, description="stochastic depth, passed to the plugin Config")
    augmentation: Augmentation = Augmentation()

    @model_validator(mode="after")
    def _check(self) -> TrainSettings:
        if self.batch_size % self.grad_accumulation:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by grad_accumulation "
                             f"{self.grad_accumulation}")
        return self


class ModalityData(_Strict):
    """Where a modality's (image, modality) pairs come from."""

    kind: Literal["toy", "manifest", "webdataset"] = "toy"
    manifest: str | None = Field(None, description="JSONL/CSV rows {'image': path, '<modality>': path}")
    shards: str | None = Field(None, description="WebDataset shard pattern, e.g. data/audio-{000000..000099}.tar")
    num_items: int | None = Field(None, ge=1, description="items in the shards (needed to plan epochs)")

    @model_validator(mode="after")
    def _check(self) -> ModalityData:
        if self.kind == "manifest" and not self.manifest:
            raise ValueError("kind 'manifest' needs a 'manifest' path")
        if self.kind == "webdataset" and not (self.shards and self.num_items):
            raise ValueError("kind 'webdataset' needs 'shards' and 'num_items'")
        return self


# -- anchor -------------------------------------------------------------------------------------------
class TinyAnchor(_Strict):
    """Architecture of a tiny open_clip anchor (used when ``anchor.model`` is ``tiny``)."""

    embed_dim: int = Field(64, ge=8)
    image_size: int = Field(32, ge=8)
    patch_size: int = Field(8, ge=1)
    vision_width: int = Field(96, ge=8)
    vision_layers: int = Field(2, ge=1)
    vision_heads: int = Field(4, ge=1)
    text_width: int = Field(64, ge=8)
    text_layers: int = Field(2, ge=1)
    text_heads: int = Field(4, ge=1)
    context_length: int = Field(16, ge=4)
    vocab_size: int = Field(49408, ge=16)


class AnchorPretrain(_Strict):
    """CLIP-style pretraining of a tiny anchor on toy image–caption pairs (stands in for web pretraining)."""

    steps: int = Field(0, ge=0, description="0 = no pretraining")
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_steps: int = Field(20, ge=0)
    scenes: int = Field(2000, ge=10)
    extra_templates: bool = Field(True, description="also caption images with the eval prompt templates")


class AnchorSpec(_Strict):
    """The frozen anchor: an open_clip architecture with weights (paper: ViT-H-14 / laion2b_s32b_b79k)."""

    model: str = "ViT-H-14"
    pretrained: str | None = "laion2b_s32b_b79k"
    tiny: TinyAnchor = TinyAnchor()
    pretrain: AnchorPretrain = AnchorPretrain()
    image: dict[str, Any] = Field(default_factory=dict, description="config of the 'vision' plugin")
    text: dict[str, Any] = Field(default_factory=dict, description="config of the 'text' plugin")
    cache_embeddings: bool = Field(False, description="precompute the anchor's image embeddings once")
    cache_dir: str | None = None


# -- data, eval, run ---------------------------------------------------------------------------------
class ToyData(_Strict):
    train_scenes: int = Field(2000, ge=2)
    eval_scenes: int = Field(500, ge=10)
    seed: int = 0


class DataSettings(_Strict):
    toy: ToyData = ToyData()
    workers: int = Field(1, ge=0, description="DataLoader worker processes (rendering + preprocessing)")
    prefetch: int = Field(4, ge=1)


class EvalSettings(_Strict):
    enabled: bool = True
    templates: list[str] | None = Field(None, description="prompt templates with '{}'; default: CLIP's")
    retrieval_pairs: list[str] | None = Field(None, description="e.g. ['audio->depth']; default: all pairs")
    batch_size: int = Field(128, ge=1)
    plot: bool = True


class RunSettings(_Strict):
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    grad_checkpointing: bool = False
    schedule: Literal["proportional", "round_robin"] = "proportional"
    checkpoint_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    log_every: int = Field(10, ge=1)
    tensorboard: bool = True
    progress: bool = True
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: leave as is)")


class Recipe(_Strict):
    """Top level of a recipe file (stage 1). ``modalities`` blocks are checked in stage 2."""

    name: str = "bindcore-run"
    run: RunSettings = RunSettings()
    anchor: AnchorSpec = AnchorSpec()
    data: DataSettings = DataSettings()
    eval: EvalSettings = EvalSettings()
    modalities: dict[str, dict[str, Any]] = Field(min_length=1)


class ModalityRecipe(BaseModel):
    """A validated ``modalities.<name>`` block."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True, protected_namespaces=())

    name: str
    config: ModalityConfig
    train: TrainSettings
    data: ModalityData


class ValidatedRecipe(BaseModel):
    """A recipe that passed both stages; ``source`` is the file it came from (paths resolve against it)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True, protected_namespaces=())

    recipe: Recipe
    modalities: dict[str, ModalityRecipe]
    source: Path | None = None
    raw: dict[str, Any]

    @property
    def run(self) -> RunSettings:
        return self.recipe.run

    @property
    def anchor(self) -> AnchorSpec:
        return self.recipe.anchor

    def fingerprint(self) -> str:
        """A hash of the validated content; a run directory refuses to resume a different recipe."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def resolve(self, path: str) -> Path:
        """A recipe path relative to the recipe file (environment variables and ``~`` expanded)."""
        return _resolve(self.source, path)


# -- loading ------------------------------------------------------------------------------------------
def _validate(model: type[BaseModel], values: Any, prefix: str, problems: list[str]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems.extend(format_validation_error(model, error, prefix).splitlines())
        return None


_ENV_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def unset_variables(path: str) -> list[str]:
    """Environment variables ``path`` refers to that are not set (``os.path.expandvars`` leaves them as is)."""
    return [a or b for a, b in _ENV_VAR.findall(path) if (a or b) not in os.environ]


def _resolve(source: Path | None, path: str) -> Path:
    expanded = Path(os.path.expanduser(os.path.expandvars(path)))
    if expanded.is_absolute() or source is None:
        return expanded
    return source.parent / expanded


def _check_files(recipe: Recipe, modalities: dict[str, ModalityRecipe], source: Path | None,
                 problems: list[str]) -> None:
    for name, block in modalities.items():
        if block.data.kind == "manifest" and block.data.manifest:
            path = _resolve(source, block.data.manifest)
            unset = unset_variables(block.data.manifest)
            if unset:
                problems.append(f"modalities.{name}.data.manifest: {block.data.manifest} uses the environment "
                                f"variable {', '.join(unset)}, which is not set (export it, e.g. "
                                f"{unset[0]}=/path/to/data)")
            elif not path.is_file():
                problems.append(f"modalities.{name}.data.manifest: file not found: {path} "
                                f"(write a JSONL manifest of {{\"image\": ..., \"{name}\": ...}} rows there)")
        if block.data.kind == "webdataset" and block.data.shards:
            from bindcore.data.shards import expand_shards

            missing = [p for p in expand_shards(str(_resolve(source, block.data.shards))) if not Path(p).is_file()]
            if missing:
                more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
                problems.append(f"modalities.{name}.data.shards: shard not found: {missing[0]}{more}")
    pretrained = recipe.anchor.pretrained
    if pretrained and (os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))):
        path = _resolve(source, pretrained)
        if not path.is_file():
            problems.append(f"anchor.pretrained: weights file not found: {path}")


def validate_recipe(raw: Any, *, source: Path | None = None, check_files: bool = True) -> ValidatedRecipe:
    """Validate a recipe mapping in two stages; raise one :class:`ConfigError` listing every problem."""
    from bindcore.plugins import get_registry

    where = f"{source}: " if source else ""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}a recipe must be a YAML mapping, got {type(raw).__name__}")
    problems: list[str] = []
    top = dict(raw)
    modality_blocks = top.get("modalities")
    # Stage 1 sees modality blocks only as mappings; their contents are stage 2's job.
    recipe = _validate(Recipe, top, "", problems)
    registry = get_registry()
    modalities: dict[str, ModalityRecipe] = {}
    if isinstance(modality_blocks, dict):
        known = registry.names()
        for name, block in modality_blocks.items():
            prefix = f"modalities.{name}"
            if not isinstance(block, dict):
                if block is not None:
                    continue  # stage 1 already reported the wrong type
                block = {}
            if name in ANCHOR_MODALITIES:
                problems.append(f"{prefix}: '{name}' is the frozen anchor, not a bindable modality "
                                f"(configure it under anchor.{'image' if name == 'vision' else 'text'})")
                continue
            try:
                cls = registry.get(name)
            except Exception as exc:  # unknown or duplicate modality
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f", did you mean {close[0]}?" if close else ""
                problems.append(f"{prefix}: unknown modality{hint} ({exc})")
                continue
            train = _validate(TrainSettings, block.get("train") or {}, f"{prefix}.train", problems)
            data = _validate(ModalityData, block.get("data") or {}, f"{prefix}.data", problems)
            options = {k: v for k, v in block.items() if k not in RESERVED_MODALITY_KEYS}
            if train is not None and train.drop_path is not None:
                options = _with_drop_path(cls.Config, options, train.drop_path)
            config = _validate(cls.Config, options, prefix, problems)
            if train is not None:
                _check_augmentation(name, cls, train.augmentation, recipe, problems)
            if None not in (train, data, config):
                modalities[name] = ModalityRecipe(name=name, config=config, train=train, data=data)
    for side, plugin in (("image", "vision"), ("text", "text")):
        if recipe is None:
            break
        block = recipe.anchor.image if side == "image" else recipe.anchor.text
        try:
            cls = registry.get(plugin)
        except Exception:
            continue  # the trainer falls back to its built-in toy stand-in
        options = dict(block)
        if "anchor" in cls.Config.model_fields and "anchor" not in options:
            from bindcore.train.anchor_setup import tiny_arch

            spec = recipe.anchor
            options["anchor"] = ({"arch": tiny_arch(spec.tiny)} if spec.model == "tiny"
                                 else {"model": spec.model, "pretrained": spec.pretrained})
        _validate(cls.Config, options, f"anchor.{side}", problems)
    if recipe is not None and check_files:
        _check_files(recipe, modalities, source, problems)
    if problems:
        head = f"{where}invalid recipe ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"
        raise ConfigError("\n  ".join([head, *problems]))
    assert recipe is not None
    return ValidatedRecipe(recipe=recipe, modalities=modalities, source=source, raw=raw)


def _check_augmentation(name: str, cls: type, augmentation: Augmentation, recipe: Recipe | None,
                        problems: list[str]) -> None:
    """Augmentations need the axes the plugin declares; image crops need uncached anchor images."""
    prefix = f"modalities.{name}.train.augmentation"
    axes = getattr(cls, "augment_axes", {})
    declared = ", ".join(sorted(axes)) or "none"
    for setting, lacking in augmentation.missing_axes(axes).items():
        names = " or ".join(repr(axis) for axis in lacking)
        problems.append(f"{prefix}.{setting}: {name} has no {names} axis (its plugin declares augment_axes: "
                        f"{declared}); remove {setting}")
    if augmentation.image_crop is not None and recipe is not None and recipe.anchor.cache_embeddings:
        problems.append(f"{prefix}.image_crop: anchor.cache_embeddings is true, and cached embeddings are of "
                        f"un-augmented images; set anchor.cache_embeddings: false or remove image_crop")


def _with_drop_path(config_cls: type[BaseModel], options: dict[str, Any], rate: float) -> dict[str, Any]:
    """Put ``train.drop_path`` into the plugin config where it has a ``drop_path`` field (top or nested)."""
    fields = config_cls.model_fields
    if "drop_path" in fields:
        return {**options, "drop_path": rate}
    for key, field in fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        if sub and "drop_path" in sub:
            nested = dict(options.get(key) or {})
            nested["drop_path"] = rate
            return {**options, key: nested}
    return options


def load_recipe(path: str | os.PathLike[str], *, overrides: list[str] | None = None,
                check_files: bool = True) -> ValidatedRecipe:
    """Read and validate a recipe file. ``overrides`` are ``dotted.key=yaml_value`` strings applied first."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"recipe file not found: {source}")
    try:
        raw = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    for override in overrides or []:
        raw = apply_override(raw, override)
    return validate_recipe(raw, source=source.resolve(), check_files=check_files)


def apply_override(raw: Any, override: str) -> dict[str, Any]:
    """``a.b.c=value`` (value parsed as YAML) → a copy of ``raw`` with that key set."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.path=value")
    key, value = override.split("=", 1)
    result = json.loads(json.dumps(raw if isinstance(raw, dict) else {}, default=str))
    node = result
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {part} is not a mapping")
    node[parts[-1]] = yaml.safe_load(value)
    return result
