"""The recipe keys of held-out evaluation: ``modalities.<name>.data.val`` (a validation split), ``run.val_every`` and
``run.keep_best`` (when to validate, which checkpoint to keep), ``eval.benchmarks`` (named benchmarks at the end of
training), plus the checks that span blocks (a ``keep_best`` metric that validation will log, benchmark names that
are registered, files that exist). The training side is :mod:`bindcore.train.validation`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Offset of a toy validation split's default seed from ``data.toy.seed`` (training scenes use the seed itself,
#: the toy eval ``seed + 1_000_003``, anchor pretraining ``seed + 7_919``).
VAL_SCENES_OFFSET = 2_000_029
#: Recall cut-offs logged at each validation (both directions, image↔modality).
VAL_RECALLS = (1, 5)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class ValData(_Strict):
    """``modalities.<name>.data.val``: held-out (image, modality) pairs of the same kinds as training data."""

    kind: Literal["toy", "manifest", "webdataset"] = "toy"
    manifest: str | None = Field(None, description="JSONL/CSV rows {'image': path, '<modality>': path}")
    shards: str | None = Field(None, description="WebDataset shard pattern, e.g. data/audio-val-{000000..000003}.tar")
    scenes: int = Field(500, ge=5, description="kind 'toy': how many held-out scenes")
    seed: int | None = Field(None, description="kind 'toy': their seed (default: data.toy.seed + 2000029, never "
                                               "the training or toy-eval scenes)")

    @model_validator(mode="after")
    def _check(self) -> ValData:
        if self.kind == "manifest" and not self.manifest:
            raise ValueError("kind 'manifest' needs a 'manifest' path")
        if self.kind == "webdataset" and not self.shards:
            raise ValueError("kind 'webdataset' needs 'shards'")
        return self


class KeepBest(_Strict):
    """``run.keep_best``: keep ``checkpoints/best.pt``, the checkpoint with the best value of one validation metric."""

    metric: str = Field(description="a column validation logs, e.g. 'val/audio/image->audio R@1'")
    mode: Literal["max", "min"] | None = Field(None, description="default: min for a loss, max for a recall")

    def best_is_max(self) -> bool:
        return self.mode == "max" if self.mode else not self.metric.endswith("/loss")


class BenchmarkEntry(_Strict):
    """One ``eval.benchmarks`` item: a registered benchmark run at the end of training on the run's modalities."""

    name: str = Field(description="a benchmark name (bindcore benchmark --list)")
    root: str = Field(description="the dataset as its authors publish it (for labelled/pairs: the manifest)")
    modality: str | None = Field(None, description="which of the run's modalities (default: the benchmark's own)")
    options: dict[str, Any] = Field(default_factory=dict, description="the benchmark's options (-o key value)")
    batch_size: int | None = Field(None, ge=1, description="default: eval.batch_size")


def validation_metrics(name: str) -> list[str]:
    """The metrics.csv / TensorBoard columns one validation of modality ``name`` logs."""
    columns = [f"val/{name}/loss"]
    for query, gallery in (("image", name), (name, "image")):
        columns += [f"val/{name}/{query}->{gallery} R@{k}" for k in VAL_RECALLS]
    return columns


def check_validation_settings(recipe: Any, modalities: dict[str, Any], problems: list[str]) -> None:
    """Cross-block checks of a recipe whose blocks each validated: ``run.keep_best.metric`` names a column that
    validation will log, and every ``eval.benchmarks`` entry names a registered benchmark and one of the run's
    modalities. ``recipe`` is the stage-1 :class:`~bindcore.recipe.schema.Recipe`."""
    logged = [m for name, block in sorted(modalities.items()) if block.data.val is not None
              for m in validation_metrics(name)]
    keep_best = recipe.run.keep_best
    if keep_best is not None and keep_best.metric not in logged:
        if not logged:
            problems.append(f"run.keep_best.metric: {keep_best.metric!r} cannot be logged: no modality has a "
                            f"validation split (add modalities.<name>.data.val, or remove run.keep_best)")
        else:
            close = difflib.get_close_matches(keep_best.metric, logged, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(f"run.keep_best.metric: unknown metric {keep_best.metric!r}; {hint}validation logs: "
                            + ", ".join(repr(m) for m in logged))
    if not recipe.eval.benchmarks:
        return
    registered = registered_benchmarks()  # collects every plugin's benchmarks: only when a recipe names some
    for index, entry in enumerate(recipe.eval.benchmarks):
        prefix = f"eval.benchmarks.{index}"
        if entry.modality is not None and entry.modality not in modalities:
            problems.append(f"{prefix}.modality: {entry.modality!r} is not one of this run's modalities "
                            f"({', '.join(sorted(modalities))})")
        spec = registered.get(entry.name)
        if spec is None:
            close = difflib.get_close_matches(entry.name, sorted(registered), n=1)
            hint = f", did you mean {close[0]!r}?" if close else ""
            problems.append(f"{prefix}.name: unknown benchmark {entry.name!r}{hint} (bindcore benchmark --list "
                            f"describes them: {', '.join(sorted(registered)) or 'none registered'})")
            continue
        problems.extend(_benchmark_problems(spec, entry, modalities, prefix))


def _benchmark_problems(spec: Any, entry: BenchmarkEntry, modalities: dict[str, Any], prefix: str) -> list[str]:
    """What is wrong with running benchmark ``spec`` as ``entry`` on a run of ``modalities``."""
    from pydantic import ValidationError

    from bindcore.config import format_validation_error

    if spec.modality == "*":
        if entry.modality is None:
            return [f"{prefix}.modality: benchmark {spec.name!r} works on any modality: name one of this run's "
                    f"({', '.join(sorted(modalities))})"]
    elif entry.modality is not None and entry.modality != spec.modality:
        return [f"{prefix}.modality: benchmark {spec.name!r} measures {spec.modality!r}, not {entry.modality!r}"]
    elif spec.modality not in modalities:
        return [f"{prefix}.name: benchmark {spec.name!r} measures {spec.modality!r}, which this run does not train "
                f"({', '.join(sorted(modalities))})"]
    values = dict(entry.options)
    if spec.modality == "*":
        values.setdefault("modality", entry.modality)
    try:
        spec.options.model_validate(values)
    except ValidationError as error:
        return format_validation_error(spec.options, error, f"{prefix}.options").splitlines()
    return []


def check_validation_files(recipe: Any, modalities: dict[str, Any], source: Path | None, problems: list[str],
                           checked: list[str] | None, *, resolve_path: Callable[[Path | None, str], Path],
                           unset_variables: Callable[[str], list[str]]) -> None:
    """Read the validation manifests (every row and file) and index the validation shards, as validation will;
    check that every ``eval.benchmarks`` root exists. ``resolve_path`` and ``unset_variables`` are
    :mod:`bindcore.recipe.load`'s (passed in: this module is imported by the schema, below the loader)."""
    for name, block in sorted(modalities.items()):
        val = block.data.val
        prefix = f"modalities.{name}.data.val"
        if val is None or val.kind == "toy":
            if val is not None and checked is not None:
                checked.append(f"{prefix}: {val.scenes} held-out toy scenes")
            continue
        location = val.manifest if val.kind == "manifest" else val.shards
        unset = unset_variables(location or "")
        key = "manifest" if val.kind == "manifest" else "shards"
        if unset:
            problems.append(f"{prefix}.{key}: {location} uses the environment variable {', '.join(unset)}, which is "
                            f"not set (export it, e.g. {unset[0]}=/path/to/data)")
            continue
        path = resolve_path(source, location or "")
        if val.kind == "manifest":
            from bindcore.data.sources import IMAGE_KEY, listed, scan_manifest

            if not path.is_file():
                problems.append(f"{prefix}.manifest: file not found: {path} (write a JSONL manifest of "
                                f"{{\"image\": ..., \"{name}\": ...}} rows there)")
                continue
            scan = scan_manifest(path, (IMAGE_KEY, name))
            problems.extend(f"{prefix}.manifest: {problem}" for problem in listed(scan.problems))
            if scan.problems:
                continue
            count = len(scan.rows)
        else:
            try:
                count = len(val_source(val, name, path))
            except Exception as error:  # a shard that is missing or does not read as tar
                problems.append(f"{prefix}.shards: {error}")
                continue
        if count < VAL_RECALLS[-1]:
            problems.append(f"{prefix}: {count} items; validation needs at least {VAL_RECALLS[-1]} (for R@"
                            f"{VAL_RECALLS[-1]})")
        elif checked is not None:
            checked.append(f"{prefix}: {count} held-out pairs in {location}")
    for index, entry in enumerate(recipe.eval.benchmarks):
        unset = unset_variables(entry.root)
        if unset:
            problems.append(f"eval.benchmarks.{index}.root: {entry.root} uses the environment variable "
                            f"{', '.join(unset)}, which is not set (export it, e.g. {unset[0]}=/path/to/data)")
        elif not resolve_path(source, entry.root).exists():
            problems.append(f"eval.benchmarks.{index}.root: not found: {resolve_path(source, entry.root)} (the "
                            f"{entry.name} dataset, unpacked as its authors publish it)")


def val_source(val: ValData, name: str, path: Path, toy: Any = None, renderers: dict[str, Any] | None = None) -> Any:
    """The :class:`~bindcore.data.sources.PairedSource` of a manifest or webdataset validation split at ``path``
    (a toy split needs ``toy``, the recipe's ``data.toy``, and the ``renderers``)."""
    from bindcore.data.sources import ManifestSource, ShardSource, ToySource

    if val.kind == "toy":
        seed = val.seed if val.seed is not None else toy.seed + VAL_SCENES_OFFSET
        return ToySource(val.scenes, seed, renderers or {})
    if val.kind == "manifest":
        return ManifestSource(path, name)
    return ShardSource(str(path), name)


def describe_val(val: ValData, name: str, path: Path | None, count: int, toy: Any = None) -> str:
    """What a validation split is, for tables and validation.json: 'toy world, 200 held-out scenes, seed 5' or
    'validation manifest /data/val.jsonl, 40 items'."""
    if val.kind == "toy":
        seed = val.seed if val.seed is not None else toy.seed + VAL_SCENES_OFFSET
        return f"toy world, {count} held-out scenes, seed {seed}"
    return f"validation {'manifest' if val.kind == 'manifest' else 'shards'} {path}, {count} items"


def registered_benchmarks() -> dict[str, Any]:
    """The registered benchmarks by name (:mod:`bindcore.eval.benchmarks.registry`: the core's and the plugins')."""
    from bindcore.eval.benchmarks.registry import get_benchmarks

    return dict(get_benchmarks().benchmarks)


__all__ = ["VAL_RECALLS", "VAL_SCENES_OFFSET", "BenchmarkEntry", "KeepBest", "ValData",
           "check_validation_files", "check_validation_settings", "describe_val", "registered_benchmarks", "val_source",
           "validation_metrics"]
