"""Training recipes: one YAML file, validated in two stages before any work starts.

Stage 1 checks the top level (run settings, anchor, data, eval) against :class:`~bindcore.recipe.schema.Recipe`.
Stage 2 checks each ``modalities.<name>`` block: its reserved ``train`` and ``data`` sub-blocks against
:class:`TrainSettings` / :class:`ModalityData`, and every other key against the plugin's own ``Config`` (found
through the registry). Every problem of both stages is collected into one :class:`ConfigError` whose lines name the
YAML path (``modalities.audio.encoder.widht: unknown key, did you mean width?``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bindcore.anchor.config import looks_like_weights_file
from bindcore.config import format_validation_error
from bindcore.errors import ConfigError
from bindcore.recipe.finetune import check_finetune_settings, merge_init_options
from bindcore.recipe.schema import (
    ANCHOR_MODALITIES,
    RESERVED_MODALITY_KEYS,
    Augmentation,
    ModalityData,
    ModalityRecipe,
    Recipe,
    TrainSettings,
    ValidatedRecipe,
    resolve_path,
)
from bindcore.recipe.validation import check_validation_files, check_validation_settings


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


def check_modality_data(name: str, block: ModalityRecipe, recipe: Recipe, source: Path | None,
                        problems: list[str]) -> str | None:
    """Read the data of ``modalities.<name>`` as training will: every manifest row (JSON/CSV errors and missing
    files with their line numbers) or every shard's member list; check the batch size against the item count.
    Problems go to ``problems``; returns a one-line summary of what was checked (None when nothing could be)."""
    from bindcore.data.plan import batch_size_problem
    from bindcore.data.sources import IMAGE_KEY, ShardSource, expand_shards, listed, scan_manifest

    data, prefix = block.data, f"modalities.{name}.data"
    count: int | None = None
    summary: str | None = None
    for field in ("manifest", "shards", "root", "index"):
        value = getattr(data, field)
        unset = unset_variables(value) if value else []
        if unset:
            problems.append(f"{prefix}.{field}: {value} uses the environment variable {', '.join(unset)}, "
                            f"which is not set (export it, e.g. {unset[0]}=/path/to/data)")
            return None
    if data.kind == "toy":
        count = recipe.data.toy.train_scenes
        where, summary = "the toy world (data.toy.train_scenes)", f"{prefix}: {count} toy scenes"
    elif data.kind == "manifest" and data.manifest:
        path = resolve_path(source, data.manifest)
        if not path.is_file():
            problems.append(f"{prefix}.manifest: file not found: {path} "
                            f"(write a JSONL manifest of {{\"image\": ..., \"{name}\": ...}} rows there)")
        else:
            scan = scan_manifest(path, (IMAGE_KEY, name))
            problems.extend(f"{prefix}.manifest: {problem}" for problem in listed(scan.problems))
            count = None if scan.problems else len(scan.rows)  # the batch size is checked on good data only
            where = f"the manifest {path}"
            summary = f"{prefix}: {scan.read} rows of {path} checked ({scan.files} files)"
    elif data.kind not in ("manifest", "webdataset", "video"):
        from bindcore.data.kinds import check_plugin_source

        count, summary = check_plugin_source(name, block, recipe.run.seed, source, problems)
        where = f"the {data.kind} tree {data.root}"
    elif data.kind == "video":
        from bindcore.data.video import check_videos

        count, summary = check_videos(name, block, recipe.run.seed, source, problems)
        where = f"the videos of {data.root or data.manifest}"
    elif data.kind == "webdataset" and data.shards and data.mode == "stream":
        from bindcore.data.stream import check_stream

        count, summary = check_stream(name, block, source, problems)
        where = f"the streamed shards {data.shards}"
    elif data.kind == "webdataset" and data.shards:
        shards = expand_shards(str(resolve_path(source, data.shards)))
        missing = [p for p in shards if not Path(p).is_file()]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            problems.append(f"{prefix}.shards: shard not found: {missing[0]}{more}")
        else:
            try:
                count = len(ShardSource(str(resolve_path(source, data.shards)), name))
            except ConfigError as error:
                problems.append(f"{prefix}.shards: {error}")
            else:
                where = f"the {len(shards)} shard(s) {data.shards}"
                summary = f"{prefix}: {count} samples in {len(shards)} shard(s) indexed"
    if count:
        too_large = batch_size_problem(name, block.train.batch_size, count, where)
        if too_large:
            problems.append(too_large)
    return summary


def _check_files(recipe: Recipe, modalities: dict[str, ModalityRecipe], source: Path | None,
                 problems: list[str], checked: list[str] | None = None) -> None:
    for name, block in modalities.items():
        summary = check_modality_data(name, block, recipe, source, problems)
        if summary and checked is not None:
            checked.append(summary)
    check_validation_files(recipe, modalities, source, problems, checked, resolve_path=resolve_path,
                           unset_variables=unset_variables)
    anchor = ValidatedRecipe(recipe=recipe, modalities={}, source=source, raw={}).anchor_source()
    if anchor.pretrained and not os.path.isfile(anchor.pretrained) and \
            looks_like_weights_file(recipe.anchor.pretrained or ""):
        problems.append(f"anchor.pretrained: weights file not found: {anchor.pretrained}")
    if anchor.checkpoint and not os.path.isfile(anchor.checkpoint):
        problems.append(f"anchor.checkpoint: weights file not found: {anchor.checkpoint}")
    if anchor.local_dir is not None and not anchor.local_dir.is_dir():
        problems.append(f"anchor.model: folder not found: {anchor.local_dir} (a local-dir: anchor is an open_clip "
                        f"folder, e.g. the OUT/anchor of `bindcore convert imagebind`)")


def validate_recipe(raw: Any, *, source: Path | None = None, check_files: bool = True,
                    checked: list[str] | None = None) -> ValidatedRecipe:
    """Validate a recipe mapping in two stages; raise one :class:`ConfigError` listing every problem.

    ``check_files`` also reads every manifest row and shard (:func:`check_modality_data`) and checks the anchor's
    files; ``checked`` receives one summary line per modality of what was read.
    """
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
            if data is not None:
                from bindcore.data.kinds import BUILTIN_KINDS, data_kinds, unknown_kind_message

                if data.kind not in BUILTIN_KINDS and data.kind not in data_kinds():
                    problems.append(f"{prefix}.data.kind: {unknown_kind_message(data.kind)}")
                    data = None
            options: dict[str, Any] | None = {k: v for k, v in block.items() if k not in RESERVED_MODALITY_KEYS}
            init = _init_path(block.get("init"), source, prefix, problems)
            if init is not None:  # the saved weights fix the config: recipe keys may only keep their shapes
                options = merge_init_options(cls, options, init, prefix, problems)
            if options is None or (block.get("init") is not None and init is None):
                continue
            if train is not None and train.drop_path is not None:
                options = _with_drop_path(cls.Config, options, train.drop_path)
            config = _validate(cls.Config, options, prefix, problems)
            if train is not None:
                _check_augmentation(name, cls, train.augmentation, recipe, problems)
                if config is not None:
                    check_finetune_settings(cls, config, train, prefix, problems)
            if None not in (train, data, config):
                modalities[name] = ModalityRecipe(name=name, config=config, train=train, data=data, init=init)
    for side, plugin in (("image", "vision"), ("text", "text")):
        if recipe is None:
            break
        block = recipe.anchor.image if side == "image" else recipe.anchor.text
        try:
            cls = registry.get(plugin)
        except Exception:
            continue  # the trainer falls back to its built-in toy stand-in
        options = anchor_plugin_options(cls, block, recipe_anchor_source(recipe, source))
        _validate(cls.Config, options, f"anchor.{side}", problems)
    if recipe is not None:
        check_validation_settings(recipe, modalities, problems)
    if recipe is not None and check_files:
        _check_files(recipe, modalities, source, problems, checked)
    if problems:
        head = f"{where}invalid recipe ({len(problems)} problem{'s' if len(problems) > 1 else ''}):"
        raise ConfigError("\n  ".join([head, *problems]))
    assert recipe is not None
    return ValidatedRecipe(recipe=recipe, modalities=modalities, source=source, raw=raw)


def _init_path(value: Any, source: Path | None, prefix: str, problems: list[str]) -> Path | None:
    """``modalities.<name>.init`` resolved against the recipe file (None: absent or a problem)."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        problems.append(f"{prefix}.init: expected the path of a saved modality directory or checkpoint "
                        f"(got {value!r})")
        return None
    unset = unset_variables(str(value))
    if unset:
        problems.append(f"{prefix}.init: {value} uses the environment variable {', '.join(unset)}, which is not set "
                        f"(export it, e.g. {unset[0]}=/path/to/weights)")
        return None
    return resolve_path(source, str(value))


def recipe_anchor_source(recipe: Recipe, source: Path | None) -> Any:
    return ValidatedRecipe(recipe=recipe, modalities={}, source=source, raw={}).anchor_source()


def anchor_plugin_options(plugin_cls: type, block: dict[str, Any], anchor: Any) -> dict[str, Any]:
    """The vision/text plugin config of a recipe: its ``anchor.image``/``anchor.text`` block plus, where the plugin
    has an ``anchor`` field and the block does not set one, the run's anchor (so their sizes agree)."""
    options = dict(block)
    if "anchor" in getattr(plugin_cls.Config, "model_fields", {}) and "anchor" not in options:
        options["anchor"] = anchor.model_dump(mode="json")
    return options


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
    if augmentation.image_crop is not None and recipe is not None and recipe.anchor.cache_embeddings is True:
        problems.append(f"{prefix}.image_crop: anchor.cache_embeddings is true, and cached embeddings are of "
                        f"un-augmented images; set anchor.cache_embeddings: {{views: K}} (K cached crops of each "
                        f"image, e.g. 10), false, or remove image_crop")


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
                check_files: bool = True, checked: list[str] | None = None) -> ValidatedRecipe:
    """Read and validate a recipe file (see :func:`validate_recipe`). ``overrides`` are ``dotted.key=yaml_value``
    strings applied first."""
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"recipe file not found: {source}")
    raw = _read_yaml(source)
    for override in overrides or []:
        raw = apply_override(raw, override)
    return validate_recipe(raw, source=source.resolve(), check_files=check_files, checked=checked)


def _read_yaml(source: Path) -> Any:
    try:
        return yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None


def load_run_recipe(run_dir: str | os.PathLike[str]) -> ValidatedRecipe:
    """The recipe a run was trained with (``RUN/recipe.yaml``), for using the run later (``bindcore eval``,
    ``bindcore benchmark``, ``init`` from its checkpoints). Relative paths resolve against the folder of the recipe
    file it was trained from (``RUN/recipe.base``), as they did then. A modality's ``init`` is only needed for its
    config once trained: where that path is gone (moved, deleted) and the run saved the trained modality, its config
    is read from ``RUN/modalities/<name>`` instead, which holds the same shapes."""
    run_dir = Path(run_dir)
    recipe_path = run_dir / "recipe.yaml"
    if not recipe_path.is_file():
        raise ConfigError(f"{run_dir} is not a bindcore run directory (no recipe.yaml); "
                          f"train first: bindcore train RECIPE --out {run_dir}")
    raw = _read_yaml(recipe_path)
    base_file = run_dir / "recipe.base"
    base = Path(base_file.read_text().strip()) if base_file.is_file() else run_dir.resolve()
    blocks = raw.get("modalities") if isinstance(raw, dict) else None
    for name, block in blocks.items() if isinstance(blocks, dict) else ():
        init = block.get("init") if isinstance(block, dict) else None
        if not isinstance(init, str) or not init.strip() or unset_variables(init):
            continue  # validation names the problem
        path = resolve_path(base / recipe_path.name, init)
        trained = run_dir / "modalities" / str(name)
        block["init"] = str(path if path.exists() or not trained.is_dir() else trained.resolve())
    recipe = validate_recipe(raw, source=recipe_path.resolve(), check_files=False)
    return recipe.model_copy(update={"source": base / recipe_path.name})


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
