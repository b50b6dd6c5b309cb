"""The schema of a training recipe: one pydantic model per block (run settings, anchor, data, eval, and the
reserved ``train``/``data`` sub-blocks of each modality). Validation and loading are in :mod:`bindcore.recipe.load`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bindcore.anchor.config import LOCAL_DIR_PREFIX, AnchorConfig, looks_like_weights_file
from bindcore.config import ModalityConfig
from bindcore.recipe.validation import BenchmarkEntry, KeepBest, ValData

RESERVED_MODALITY_KEYS = ("train", "data", "init")
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


class LoraSettings(_Strict):
    """LoRA adapters on the trunk's projections (:mod:`bindcore.nn.lora`); the base weights stay frozen."""

    rank: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0, description="scaling of the update: alpha / rank")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout of the low-rank path's input features")
    targets: list[str] = Field(["qkv", "out", "fc1", "fc2"], min_length=1,
                               description="qkv, out, fc1, fc2 (the trunk's attention/MLP projections) or globs "
                                           "over parameter names")


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
    freeze: list[str] = Field(default_factory=list, description="parameters kept frozen: stem, blocks, blocks.A-B, "
                                                                 "head, trunk, or globs over parameter names")
    lora: LoraSettings | None = Field(None, description="train LoRA adapters instead of the weights (null: off)")

    @model_validator(mode="after")
    def _check(self) -> TrainSettings:
        if self.lora is not None and self.freeze:
            raise ValueError("freeze and lora together: with lora every base weight is frozen and only the adapters "
                             "train; remove freeze")
        if self.batch_size % self.grad_accumulation:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by grad_accumulation "
                             f"{self.grad_accumulation}")
        return self


class ModalityData(_Strict):
    """Where a modality's (image, modality) pairs come from."""

    kind: str = Field("toy", description="toy | manifest | webdataset | video, or a kind a plugin provides "
                                         "(sunrgbd: bind-depth, llvip: bind-thermal); checked in the second stage")
    manifest: str | None = Field(None, description="JSONL/CSV rows {'image': path, '<modality>': path} (kind "
                                                    "video: rows {'video': path})")
    root: str | None = Field(None, description="kind video: a folder; every video file under it is used; "
                                               "a plugin's kind: the dataset's tree")
    split: str | None = Field(None, description="a plugin's kind: the split of the tree (train, test, ...)")
    options: dict[str, Any] = Field(default_factory=dict, description="a plugin's kind: its own options")
    clip_seconds: float | None = Field(None, gt=0, description="kind video: seconds of the modality around each "
                                                               "frame (default: the modality's clip_duration)")
    clips_per_video: int = Field(1, ge=1, description="kind video: items per video, each at its own seeded time")
    shards: str | None = Field(None, description="WebDataset shard pattern, e.g. data/audio-{000000..000099}.tar; "
                                                 "with mode 'stream' also pipe: commands and URLs")
    mode: Literal["index", "stream"] = Field(
        "index", description="webdataset: 'index' reads every shard's member list up front (random access, small "
                             "data); 'stream' reads shards sequentially, shuffled by shard and within a buffer")
    index: str | None = Field(None, description="mode 'stream': the shard index (samples per shard) that plans an "
                                                "epoch; default SHARD_FOLDER/index.json (bindcore shard writes it)")
    shuffle_buffer: int = Field(1000, ge=1, description="mode 'stream': samples shuffled together")
    num_items: int | None = Field(None, ge=1, description="deprecated and ignored: the item count comes from the "
                                                          "shards (index mode) or the shard index (stream mode)")
    on_error: Literal["fail", "skip"] = Field(
        "fail", description="an item whose files cannot be read or preprocessed: 'fail' stops the run naming it; "
                            "'skip' replaces it by a seeded substitute, logs it and lists it in RUN/skipped.jsonl")
    max_skipped: float = Field(0.01, ge=0, le=1, description="with on_error 'skip': the run fails once more than "
                                                             "this fraction of the items were skipped (0.01 or '1%')")
    val: ValData | None = Field(None, description="held-out pairs validated during training (run.val_every)")

    @field_validator("max_skipped", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100
            except ValueError:
                raise ValueError(f"{value!r} is not a percentage (write e.g. '1%' or 0.01)") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> ModalityData:
        if self.kind == "manifest" and not self.manifest:
            raise ValueError("kind 'manifest' needs a 'manifest' path")
        if self.kind == "video" and bool(self.root) == bool(self.manifest):
            raise ValueError("kind 'video' needs either 'root' (a folder of videos) or 'manifest' (rows {'video': "
                             "path})")
        if self.kind == "webdataset" and not self.shards:
            raise ValueError("kind 'webdataset' needs 'shards' (a shard pattern, e.g. data/a-{000..009}.tar)")
        if self.num_items is not None:
            warnings.warn("modalities.<name>.data.num_items is deprecated and ignored: the item count comes from "
                          "the shards (mode: index) or their shard index (mode: stream); remove it",
                          FutureWarning, stacklevel=2)
        return self


# -- anchor -------------------------------------------------------------------------------------------
class AnchorPretrain(_Strict):
    """CLIP-style pretraining of a random-init anchor on toy image–caption pairs (stands in for web pretraining)."""

    steps: int = Field(0, ge=0, description="0 = no pretraining")
    batch_size: int = Field(128, ge=2)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_steps: int = Field(20, ge=0)
    scenes: int = Field(2000, ge=10)
    extra_templates: bool = Field(True, description="also caption images with the eval prompt templates")


class CacheViews(_Strict):
    """``anchor.cache_embeddings: {views: K}``: K seeded RandomResizedCrop views of every image, embedded once
    (see :mod:`bindcore.train.views_cache`); each step draws one view per item, so ``image_crop`` keeps working."""

    views: int = Field(ge=1, le=1024, description="crops per image, embedded once (K× the plain cache's build "
                                                  "time and disk)")


class RecipeAnchor(AnchorConfig):
    """The recipe's ``anchor`` block: where the frozen anchor comes from (every :class:`AnchorConfig` key: ``model`` +
    ``pretrained``, ``local-dir:``, ``arch``/``tiny`` + ``checkpoint``; paper: ViT-H-14 / laion2b_s32b_b79k), plus
    how a run uses it."""

    pretrain: AnchorPretrain = AnchorPretrain()
    image: dict[str, Any] = Field(default_factory=dict, description="config of the 'vision' plugin")
    text: dict[str, Any] = Field(default_factory=dict, description="config of the 'text' plugin")
    cache_embeddings: bool | CacheViews = Field(
        False, description="precompute the anchor's image embeddings once (true), or {views: K} seeded crops of "
                           "each image for recipes with image_crop")
    cache_embeddings_dir: str | None = Field(None, description="where cached embeddings go (default: RUN/anchor_cache)")

    @model_validator(mode="after")
    def _check_pretrain(self) -> RecipeAnchor:
        if self.pretrain.steps and not self.random_init:
            raise ValueError(f"pretrain.steps is {self.pretrain.steps}, but the anchor has weights "
                             f"({self.describe()}); pretraining is for a random-init anchor (tiny or arch without "
                             f"checkpoint): set pretrain.steps: 0 or drop the weights")
        return self

    @property
    def cache_views(self) -> int:
        """K of ``cache_embeddings: {views: K}``; 0 for the plain cache or none."""
        return self.cache_embeddings.views if isinstance(self.cache_embeddings, CacheViews) else 0

    def source(self, resolve: Any = None) -> AnchorConfig:
        """The plain :class:`AnchorConfig` of this block; ``resolve`` maps recipe-relative paths to real ones."""
        values = {key: getattr(self, key) for key in AnchorConfig.model_fields}
        if resolve is not None:
            if values["cache_dir"]:
                values["cache_dir"] = str(resolve(values["cache_dir"]))
            if values["pretrained"] and looks_like_weights_file(values["pretrained"]):
                values["pretrained"] = str(resolve(values["pretrained"]))
            if values["checkpoint"]:
                values["checkpoint"] = str(resolve(values["checkpoint"]))
            if self.local_dir is not None:
                values["model"] = f"{LOCAL_DIR_PREFIX}{resolve(str(self.local_dir))}"
        return AnchorConfig.model_validate(values)


# -- data, eval, run ---------------------------------------------------------------------------------
class ToyData(_Strict):
    train_scenes: int = Field(2000, ge=2)
    eval_scenes: int = Field(500, ge=10)
    seed: int = 0
    nuisance: dict[Literal["x", "y", "size", "brightness", "noise"], tuple[float, float]] = Field(
        default_factory=dict, description="shifted nuisance ranges, e.g. {noise: [0.2, 0.4]} (bindcore.toyworld."
                                          "NUISANCE_RANGES: the defaults)")

    @field_validator("nuisance")
    @classmethod
    def _ranges(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in value.items():
            if low > high:
                raise ValueError(f"{name}: a range is [low, high] with low <= high, got [{low}, {high}]")
        return value


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
    benchmarks: list[BenchmarkEntry] = Field(default_factory=list, description="benchmarks run at the end of "
                                                                                "training (bindcore benchmark)")


class RunSettings(_Strict):
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    grad_checkpointing: bool = False
    compile: bool = Field(False, description="torch.compile the bound encoders' training forward")
    schedule: Literal["proportional", "round_robin"] = "proportional"
    checkpoint_every: int = Field(100, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    log_every: int = Field(10, ge=1)
    val_every: int | None = Field(None, ge=1, description="steps between validations (default: checkpoint_every); "
                                                          "also at the last step")
    keep_best: KeepBest | None = Field(None, description="keep checkpoints/best.pt by one validation metric")
    tensorboard: bool = True
    progress: bool = True
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: leave as is)")
    dist_timeout_s: float = Field(1800.0, gt=0, description="seconds a collective waits for a stalled process "
                                                           "before every process fails (torchrun runs)")


class Recipe(_Strict):
    """Top level of a recipe file (stage 1). ``modalities`` blocks are checked in stage 2."""

    name: str = "bindcore-run"
    run: RunSettings = RunSettings()
    anchor: RecipeAnchor = RecipeAnchor()
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
    init: Path | None = None  #: the saved modality (or checkpoint) the weights start from, resolved


class ValidatedRecipe(BaseModel):
    """A recipe that passed both stages; ``source`` is the file it came from (paths resolve against it)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True, protected_namespaces=())

    recipe: Recipe
    modalities: dict[str, ModalityRecipe]
    source: Path | None = None
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def run(self) -> RunSettings:
        return self.recipe.run

    @property
    def anchor(self) -> RecipeAnchor:
        return self.recipe.anchor

    @property
    def data(self) -> DataSettings:
        return self.recipe.data

    @property
    def eval(self) -> EvalSettings:
        return self.recipe.eval

    def anchor_source(self) -> AnchorConfig:
        """Where the run's anchor comes from, paths resolved against the recipe file. A random init takes the run's
        seed unless the anchor block sets its own."""
        source = self.anchor.source(self.resolve)
        if source.random_init and "seed" not in self.anchor.model_fields_set:
            source = source.model_copy(update={"seed": self.run.seed})
        return source

    #: Settings that change how a run is watched or paced, never what it computes: a resume may change them.
    UNFINGERPRINTED: ClassVar[dict[str, tuple[str, ...]]] = {
        "run": ("progress", "tensorboard", "log_every", "threads", "dist_timeout_s", "keep_checkpoints",
                "checkpoint_every", "val_every", "keep_best"),
        "data": ("workers", "prefetch"),
        "eval": ("*",),
    }

    def fingerprint(self) -> str:
        """A hash of what the recipe computes; a run directory refuses to resume a different recipe (changing only
        logging, pacing or evaluation settings keeps the fingerprint)."""
        content = json.loads(json.dumps(self.raw, default=str))
        for block, keys in self.UNFINGERPRINTED.items():
            if "*" in keys:
                content.pop(block, None)
            elif isinstance(content.get(block), dict):
                for key in keys:
                    content[block].pop(key, None)
        for block in (content.get("modalities") or {}).values():  # validation splits: watched, not trained on
            if isinstance(block, dict) and isinstance(block.get("data"), dict) and "val" in block["data"]:
                block["data"].pop("val")
                if not block["data"]:
                    block.pop("data")
        text = json.dumps(content, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def resolve(self, path: str) -> Path:
        """A recipe path relative to the recipe file (environment variables and ``~`` expanded)."""
        return resolve_path(self.source, path)


def resolve_path(source: Path | None, path: str) -> Path:
    """``path`` with environment variables and ``~`` expanded, relative to the recipe file ``source``."""
    expanded = Path(os.path.expanduser(os.path.expandvars(path)))
    if expanded.is_absolute() or source is None:
        return expanded
    return source.parent / expanded
