"""One run setup for everything that works from a recipe (``bindcore train``, ``eval``, ``cache-anchor``): the
device and process group, the frozen anchor, the anchor-side plugins (vision and text), the bound modalities and
their data sources, all built from a :class:`~bindcore.recipe.ValidatedRecipe`.

A run directory holds what it needs to be used later: ``recipe.yaml``, ``anchor/`` (for a random-init anchor, the
frozen weights as an open_clip ``local-dir:`` folder; a named anchor is referenced, not copied), ``checkpoints/``
and ``modalities/<name>`` (the bound modalities plus ``vision`` and ``text``, which name the anchor).
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from bindcore.anchor import AnchorConfig, FrozenAnchor, load_anchor
from bindcore.anchor.config import LOCAL_DIR_CONFIG, LOCAL_DIR_PREFIX
from bindcore.data.plan import seed_of
from bindcore.data.sources import IMAGE_KEY, ManifestSource, PairedSource, ToySource
from bindcore.errors import BindcoreError, ConfigError
from bindcore.recipe import ModalityRecipe, ValidatedRecipe
from bindcore.recipe.load import anchor_plugin_options

#: Sub-directories of a run directory.
ANCHOR_DIR = "anchor"
MODALITIES_DIR = "modalities"
#: How long the other ranks wait while rank 0 prepares something long (pretraining the anchor, embedding a dataset
#: into the anchor cache): far beyond ``run.dist_timeout_s``, which bounds ordinary collectives.
PREPARE_TIMEOUT_S = 7 * 24 * 3600.0
#: Offset of the toy world's eval scenes from its training scenes (and of the anchor's pretraining scenes).
EVAL_SCENES_OFFSET = 1_000_003
PRETRAIN_SCENES_OFFSET = 7_919


@dataclass
class Context:
    """Where this process runs: device, rank among ``world_size`` processes, autocast dtype, and its log."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    autocast_dtype: torch.dtype | None = None
    log: Callable[[str], None] = print

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def run_on_main(self, work: Callable[[], object], what: str) -> None:
        """Run ``work`` on rank 0 while the other ranks wait (up to :data:`PREPARE_TIMEOUT_S`), then tell every
        rank whether it failed: a rank-0 error stops every rank at once instead of leaving them in a barrier."""
        failure: str | None = None
        error: BaseException | None = None
        if self.is_main:
            try:
                work()
            except Exception as exc:  # re-raised below on rank 0, reported to the others
                error, failure = exc, f"{type(exc).__name__}: {exc}"
        if self.world_size > 1:
            box = [failure]
            dist.broadcast_object_list(box, src=0, group=_preparation_group())
            failure = box[0]
        if error is not None:
            raise error
        if failure is not None:
            raise BindcoreError(f"rank 0 failed while {what}: {failure}")


_PREPARATION_GROUP: Any = None


def _preparation_group() -> Any:
    """A gloo group with a long timeout, made on first use (by every rank, in the same order)."""
    global _PREPARATION_GROUP
    if _PREPARATION_GROUP is None:
        _PREPARATION_GROUP = dist.new_group(backend="gloo", timeout=datetime.timedelta(seconds=PREPARE_TIMEOUT_S))
    return _PREPARATION_GROUP


def init_distributed(timeout_s: float = 1800.0) -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; initialises the process group when world > 1.

    ``timeout_s`` bounds how long a collective waits for a stalled rank before every rank fails.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def make_context(recipe: ValidatedRecipe, log: Callable[[str], None] = print) -> Context:
    run = recipe.run
    rank, world = init_distributed(run.dist_timeout_s)
    if run.device == "cuda" or (run.device == "auto" and torch.cuda.is_available()):
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dtype = torch.bfloat16 if device.type == "cuda" and run.precision in ("auto", "bf16") else None
    if run.threads:
        torch.set_num_threads(run.threads)
    return Context(device, rank, world, dtype, log if rank == 0 else (lambda _msg: None))


class RunSetup:
    """What a recipe describes, built on demand and once: ``anchor``, ``vision``, ``text``, modalities, sources.

    ``prepare=True`` (training, ``cache-anchor``) may pretrain a random-init anchor into ``out/anchor`` when it is
    missing or was made by other settings; ``prepare=False`` (evaluating a finished run) only reads it.
    """

    def __init__(self, recipe: ValidatedRecipe, out: str | os.PathLike[str], *, log: Callable[[str], None] = print,
                 prepare: bool = True, context: Context | None = None):
        self.recipe = recipe
        self.out = Path(out)
        self.prepare = prepare
        self.ctx = context or make_context(recipe, log)

    @property
    def log(self) -> Callable[[str], None]:
        return self.ctx.log

    # -- the anchor ------------------------------------------------------------------------------------
    @cached_property
    def anchor_config(self) -> AnchorConfig:
        """The config the run's frozen anchor loads from: the recipe's source when it names weights, else the
        run's own ``anchor/`` folder (a random init, pretrained on toy pairs when the recipe asks)."""
        source = self.recipe.anchor_source()
        if not source.random_init:
            return source
        folder = self.out / ANCHOR_DIR
        meta = self._anchor_meta(source)
        if not self.prepare:
            if _recorded_meta(folder) != meta:
                raise ConfigError(f"{folder} does not hold this recipe's anchor (missing, or made by other "
                                  f"settings): the run did not finish preparing it; train first: "
                                  f"bindcore train RECIPE --out {self.out}")
        else:
            def prepare() -> None:
                if _recorded_meta(folder) != meta:
                    self._write_random_init_anchor(source, folder, meta)

            self.ctx.run_on_main(prepare, f"preparing the anchor in {folder}")  # the others then read it
        return AnchorConfig(model=f"{LOCAL_DIR_PREFIX}{folder.resolve()}")

    @cached_property
    def anchor(self) -> FrozenAnchor:
        return load_anchor(self.anchor_config).to(self.ctx.device)

    def _anchor_meta(self, source: AnchorConfig) -> dict[str, Any]:
        recipe = self.recipe
        return json.loads(json.dumps({
            "source": source.model_dump(mode="json", exclude={"cache_dir"}),
            "pretrain": recipe.anchor.pretrain.model_dump(mode="json"), "pretrain_seed": recipe.run.seed,
            "toy_seed": recipe.data.toy.seed, "image": recipe.anchor.image, "text": recipe.anchor.text,
            "templates": recipe.eval.templates}, default=str))

    def _write_random_init_anchor(self, source: AnchorConfig, folder: Path, meta: dict[str, Any]) -> None:
        from bindcore.anchor import build_open_clip, save_anchor

        model, arch = build_open_clip(source)
        if self.recipe.anchor.pretrain.steps:
            model = self._pretrain(model, source)
        save_anchor(model, folder, format="local-dir", arch=arch, extra={"made_by": meta})

    def _pretrain(self, model: nn.Module, source: AnchorConfig) -> nn.Module:
        from bindcore.anchor.pretrain import pretrain_clip
        from bindcore.data.batches import preprocess_all
        from bindcore.eval.prompts import DEFAULT_TEMPLATES
        from bindcore.toyworld import CONCEPTS

        recipe = self.recipe
        settings = recipe.anchor.pretrain
        # Preprocessing needs no weights: plugins built on the source config never build it.
        vision, text = self._anchor_side(source)
        toy = ToySource(settings.scenes, recipe.data.toy.seed + PRETRAIN_SCENES_OFFSET,
                        {IMAGE_KEY: vision, "text": text})
        started = time.perf_counter()
        images = preprocess_all(toy, IMAGE_KEY, vision, workers=recipe.data.workers)
        templates = recipe.eval.templates or list(DEFAULT_TEMPLATES)
        template_tokens = {concept: text.preprocess([t.format(name) for t in templates])
                           for concept, name in enumerate(CONCEPTS)}
        plugin_captions = text.preprocess([toy.load(i, ("text",))["text"] for i in range(len(toy))])
        captions = [[plugin_captions[i], *(template_tokens[toy.label(i)] if settings.extra_templates else [])]
                    for i in range(len(toy))]
        self.log(f"anchor: rendered {len(toy)} toy image–caption pairs in {time.perf_counter() - started:.1f}s; "
                 f"pretraining a tiny open_clip for {settings.steps} steps")
        return pretrain_clip(model, images, captions, steps=settings.steps, batch_size=settings.batch_size,
                             lr=settings.lr, weight_decay=settings.weight_decay, warmup_steps=settings.warmup_steps,
                             seed=recipe.run.seed, progress=recipe.run.progress)

    # -- the anchor side: vision and text plugins ------------------------------------------------------
    @cached_property
    def vision(self) -> Any:
        """The ``vision`` plugin on the run's anchor: preprocesses (and renders) the anchor's images."""
        return self._anchor_side_plugin("vision", self.recipe.anchor.image, self.anchor_config)

    @cached_property
    def text(self) -> Any:
        """The ``text`` plugin on the run's anchor: tokenises the anchor's captions and prompts."""
        return self._anchor_side_plugin("text", self.recipe.anchor.text, self.anchor_config)

    def _anchor_side(self, anchor: AnchorConfig) -> tuple[Any, Any]:
        return (self._anchor_side_plugin("vision", self.recipe.anchor.image, anchor),
                self._anchor_side_plugin("text", self.recipe.anchor.text, anchor))

    @staticmethod
    def _anchor_side_plugin(name: str, block: dict[str, Any], anchor: AnchorConfig) -> Any:
        from bindcore.plugins import get_registry

        cls = get_registry().get(name)  # UnknownModalityError says which plugin to install
        return cls(**anchor_plugin_options(cls, block, anchor))

    # -- bound modalities and their data ---------------------------------------------------------------
    def build_modalities(self) -> dict[str, nn.Module]:
        """Each bound modality, freshly initialised from a seed of its own (adding one changes no other)."""
        from bindcore.plugins import get_registry

        modules = {}
        for name, block in sorted(self.recipe.modalities.items()):
            torch.manual_seed(seed_of("init", self.recipe.run.seed, name) % 2**63)
            modules[name] = get_registry().get(name)(block.config)
        return modules

    def load_modalities(self) -> dict[str, nn.Module]:
        """The trained modalities saved in ``out/modalities`` (eval mode)."""
        from bindcore.io import load_modality

        modules = {}
        for name in self.recipe.modalities:
            path = self.out / MODALITIES_DIR / name
            if not path.is_dir():
                raise ConfigError(f"{path} is missing: the run has not finished training {name}")
            modules[name] = load_modality(path).to(self.ctx.device)
        return modules

    def source(self, name: str, module: Any, *, split: str = "train") -> PairedSource:
        """The (image, ``name``) pairs of ``split``: "train", "eval" (the toy world's held-out scenes) or "val" (the
        modality's ``data.val`` split)."""
        block: ModalityRecipe = self.recipe.modalities[name]
        toy = self.recipe.data.toy
        if split == "val":
            from bindcore.recipe.validation import val_source

            val = block.data.val
            if val is None:
                raise ConfigError(f"modalities.{name}.data.val is not set: {name} has no validation split")
            location = val.manifest if val.kind == "manifest" else val.shards
            return val_source(val, name, self.recipe.resolve(location or ""), toy,
                              {IMAGE_KEY: self.vision, name: module})
        if block.data.kind == "toy":
            count = toy.train_scenes if split == "train" else toy.eval_scenes
            seed = toy.seed if split == "train" else toy.seed + EVAL_SCENES_OFFSET
            return ToySource(count, seed, {IMAGE_KEY: self.vision, name: module}, nuisance=toy.nuisance)
        if block.data.kind == "manifest":
            return ManifestSource(self.recipe.resolve(block.data.manifest or ""), name)
        if block.data.kind not in ("manifest", "webdataset", "video"):
            from bindcore.data.kinds import build_plugin_source

            return build_plugin_source(name, block.data, self.recipe.source, module, self.recipe.run.seed)
        if block.data.kind == "video":
            from bindcore.data.video import VideoSource

            return VideoSource.from_data(name, block.data, self.recipe.source, module, self.recipe.run.seed)
        from bindcore.data.stream import open_webdataset

        return open_webdataset(name, block, self.recipe.source, module)

    def anchor_cache_dir(self) -> Path:
        configured = self.recipe.anchor.cache_embeddings_dir
        return self.recipe.resolve(configured) if configured else self.out / "anchor_cache"

    @classmethod
    def from_run_dir(cls, run_dir: str | os.PathLike[str], *, log: Callable[[str], None] = print) -> RunSetup:
        """The setup of a finished run (its ``recipe.yaml``), reading its anchor, never pretraining one."""
        from bindcore.recipe import load_run_recipe

        return cls(load_run_recipe(run_dir), Path(run_dir), log=log, prepare=False)


def _recorded_meta(folder: Path) -> Any:
    try:
        return json.loads((folder / LOCAL_DIR_CONFIG).read_text()).get("bindcore", {}).get("made_by")
    except (OSError, ValueError, AttributeError):
        return None


__all__ = ["ANCHOR_DIR", "MODALITIES_DIR", "Context", "RunSetup", "init_distributed", "make_context"]
