"""Using embeddings: :class:`BindModel` (any subset of modalities, batched embedding), retrieval, arithmetic,
and reading/writing embedding files with their row index.

Only the modalities asked for are built or loaded: ``BindModel.load("converted/", ["audio", "text"])`` reads
``converted/audio`` and ``converted/text`` and nothing else (the reference loads all six, 4.8 GB, for any query).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bindcore.errors import BindcoreError, ConfigError, InputError, NonFiniteError, describe_item
from bindcore.modality_base import Modality

OnError = Literal["fail", "skip"]
DEFAULT_BATCH_SIZE = 32


@dataclass
class EmbedResult:
    """Embeddings of the items that succeeded, and what happened to every input.

    ``rows[i]`` is the row of ``embeddings`` holding input ``i``, or ``None`` when input ``i`` was skipped;
    ``errors[i]`` then says why. Rows keep the input order, so nothing is misaligned.
    """

    embeddings: Tensor
    rows: list[int | None]
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def skipped(self) -> list[int]:
        return sorted(self.errors)


class BindModel(nn.Module):
    """Holds any subset of modalities (the anchor's ``vision``/``text`` included) and embeds raw inputs.

    Build it from modality objects, from plugin defaults (:meth:`from_config`) or from a directory written by
    ``bindcore convert``/``Modality.save`` (:meth:`load`). Move it like any module: ``model.to("cuda",
    torch.bfloat16)``; preprocessing stays on the CPU and batches are moved to each modality's device/dtype.
    ``compile=True`` (off by default) runs each modality's forward through ``torch.compile`` with inductor
    freezing, compiling once per batch shape first; whether it pays depends on the CPU and on whether eager
    already runs its GEMMs through oneDNN (:mod:`bindcore.nn.linear`): see BENCHMARKS.md, "Embedding throughput".
    """

    def __init__(self, modalities: Mapping[str, Modality] | Iterable[Modality], *,
                 batch_size: int = DEFAULT_BATCH_SIZE, compile: bool = False):
        super().__init__()
        items = modalities.items() if isinstance(modalities, Mapping) else ((m.name, m) for m in modalities)
        self.modalities = nn.ModuleDict()
        for name, module in items:
            if not isinstance(module, Modality):
                raise TypeError(f"{name!r}: expected a bindcore.Modality, got {type(module).__name__}")
            self.modalities[name] = module
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        # Opt-in torch.compile (inductor, weights frozen as constants) of each modality's encode+project; built
        # lazily per modality, device and dtype. Not an nn.Module attribute: ``nn.Module.compile`` is a method.
        self.use_compile = bool(compile)
        self._compiled: dict[tuple[str, torch.device, torch.dtype], Callable[[Tensor], Tensor]] = {}
        self.eval()

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, configs: Mapping[str, Mapping[str, Any] | None] | Sequence[str], **kwargs: Any) -> BindModel:
        """Build freshly initialised modalities from installed plugins: ``{"audio": {...options}, "text": None}``."""
        from bindcore.plugins import modality

        pairs = configs.items() if isinstance(configs, Mapping) else ((name, None) for name in configs)
        return cls({name: modality(name, **(options or {})) for name, options in pairs}, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str], modalities: Sequence[str] | None = None, **kwargs: Any) -> BindModel:
        """Load saved modalities from ``path``: a directory of modality directories (``path/<name>``, as written
        by ``bindcore convert``), a ``bindcore train`` run directory, or a single saved modality. Only
        ``modalities`` are read (default: all found)."""
        from bindcore.io import CONFIG_FILE, load_modality, read_meta

        root = model_root(path)
        if (root / CONFIG_FILE).is_file():  # a single saved modality
            name = read_meta(root)["modality"]
            if modalities and list(modalities) != [name]:
                raise ConfigError(f"{root} holds only the {name!r} modality, not {', '.join(modalities)}")
            return cls({name: load_modality(root, **_moved_anchor(root))}, **kwargs)
        available = available_modalities(root)
        wanted = list(modalities) if modalities else available
        if not wanted:
            raise ConfigError(f"{root} holds no saved modalities (expected {root}/<name>/{CONFIG_FILE}; "
                              f"write them with `bindcore convert` or Modality.save)")
        missing = [name for name in wanted if name not in available]
        if missing:
            raise ConfigError(f"{root} has no saved modality {', '.join(map(repr, missing))} "
                              f"(available: {', '.join(available) or 'none'})")
        return cls({name: load_modality(root / name, **_moved_anchor(root / name)) for name in wanted}, **kwargs)

    @classmethod
    def for_modalities(cls, names: Sequence[str], model_dir: str | os.PathLike[str] | None = None,
                       options: Mapping[str, Mapping[str, Any]] | None = None, **kwargs: Any) -> BindModel:
        """Saved weights from ``model_dir`` when given (:meth:`load`), else plugin defaults with ``options``."""
        options = options or {}
        if model_dir is None:
            return cls.from_config({name: options.get(name) for name in names}, **kwargs)
        from bindcore.io import load_modality

        model = cls.load(model_dir, names, **kwargs)
        for name in names:
            if options.get(name):  # config overrides (e.g. a different number of clips) need a rebuild
                folder = _modality_dir(model_dir, name)
                model.modalities[name] = load_modality(folder, **{**_moved_anchor(folder), **options[name]})
        return model

    # -- queries -------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.modalities)

    def __getitem__(self, name: str) -> Modality:
        if name not in self.modalities:
            raise ConfigError(f"this BindModel has no {name!r} modality (it has: {', '.join(self.names) or 'none'})")
        return self.modalities[name]  # type: ignore[return-value]

    def __contains__(self, name: object) -> bool:
        return name in self.modalities

    # -- embedding -----------------------------------------------------------------------------------
    def embed(self, inputs: Mapping[str, Sequence[Any]], *, batch_size: int | None = None,
              progress: bool | None = None) -> dict[str, Tensor]:
        """``{"audio": [...], "text": [...]}`` → ``{"audio": (N, D), "text": (M, D)}`` unit-norm embeddings.

        Inputs are embedded ``batch_size`` at a time (default: the model's). Any bad item raises
        :class:`bindcore.InputError` naming it; use :meth:`embed_items` with ``on_error="skip"`` to keep going.
        ``progress``: show a progress bar (``None``: only for several batches on a terminal).
        """
        return {name: self.embed_items(name, items, batch_size=batch_size, progress=progress).embeddings
                for name, items in inputs.items()}

    @torch.no_grad()
    def embed_items(self, name: str, items: Sequence[Any], *, batch_size: int | None = None,
                    on_error: OnError = "fail", progress: bool | None = None) -> EmbedResult:
        """Embed ``items`` of one modality. With ``on_error="skip"`` items that fail preprocessing (or give a
        non-finite embedding) are left out of ``embeddings`` and reported in ``rows``/``errors``."""
        if on_error not in ("fail", "skip"):
            raise ConfigError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        module = self[name]
        size = batch_size or self.batch_size
        if size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {size}")
        items = list(items)
        was_training = module.training
        module.eval()
        chunks: list[Tensor] = []
        errors: dict[int, str] = {}
        kept: list[int] = []
        try:
            for start in _progress(range(0, len(items), size), total=-(-len(items) // size), desc=name,
                                   enabled=progress):
                batch = items[start:start + size]
                x, ok = _preprocess_batch(module, batch, start, on_error, errors)
                if not ok:
                    continue
                z = self._forward(name, module)(module.to_model_input(x))
                finite = torch.isfinite(z).all(dim=-1)
                if not bool(finite.all()):
                    bad = [ok[i] for i in (~finite).nonzero().flatten().tolist()]
                    if on_error == "fail":
                        raise NonFiniteError(f"{name}: non-finite embedding for input(s) "
                                             f"{', '.join(describe_item(items[i]) for i in bad)}")
                    errors.update({i: "non-finite embedding" for i in bad})
                    z, ok = z[finite], [i for i, good in zip(ok, finite.tolist(), strict=True) if good]
                chunks.append(z)
                kept.extend(ok)
        finally:
            module.train(was_training)
        embeddings = torch.cat(chunks) if chunks else _empty(module)
        rows: list[int | None] = [None] * len(items)
        for row, index in enumerate(kept):
            rows[index] = row
        return EmbedResult(embeddings, rows, errors)


    def _forward(self, name: str, module: Modality) -> Callable[[Tensor], Tensor]:
        """The modality's ``encode``+``project``: eager, or compiled when the model was built with ``compile=True``.

        Compiling costs seconds to a minute per modality and batch shape (a smaller last batch compiles once
        more); the weights are frozen into the compiled code, so it is rebuilt when the module moves to another
        device/dtype, but changing weights in place after the first embed is not seen — build a new model.
        """
        if not self.use_compile:
            return module
        key = (name, *module.input_device_dtype())
        if key not in self._compiled:
            self._compiled[key] = _frozen_compile(module)
        return self._compiled[key]


def _frozen_compile(forward: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``torch.compile`` with inductor's freezing: the (fixed, inference-only) weights become constants that it
    folds and pre-packs for the CPU's GEMM kernels (measured 1.1-1.2x over eager on the huge encoders, where
    compiling without freezing gained 1.0-1.05x). ``dynamic=False``: one graph per batch shape.

    Freezing is switched on around each call, not through ``torch.compile(options=...)``, which did not apply
    it (no gain, different numerics) — compilation happens lazily inside the call, on a new shape too.
    """
    import torch._inductor.config as inductor_config

    compiled = torch.compile(forward, dynamic=False)

    def run(x: Tensor) -> Tensor:
        with inductor_config.patch(freezing=True):
            return compiled(x)

    return run


def _preprocess_batch(module: Modality, batch: list[Any], start: int, on_error: OnError,
                      errors: dict[int, str]) -> tuple[Tensor | None, list[int]]:
    """Preprocess a batch; in skip mode isolate failing items one by one and redo the good ones together."""
    indices = list(range(start, start + len(batch)))
    try:
        return module.preprocess(batch), indices
    except BindcoreError:
        if on_error == "fail":
            raise
    except Exception as error:
        if on_error == "fail":  # a plugin failed unexpectedly: still say which item it choked on
            raise InputError(_first_failing(module, batch), f"{type(error).__name__}: {error}") from error
    good: list[int] = []
    for index, item in zip(indices, batch, strict=True):
        try:
            module.preprocess([item])
        except Exception as error:  # one bad file must not stop a large job in skip mode
            errors[index] = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
        else:
            good.append(index)
    if not good:
        return None, []
    return module.preprocess([batch[i - start] for i in good]), good


def _first_failing(module: Modality, batch: list[Any]) -> Any:
    for item in batch:
        try:
            module.preprocess([item])
        except Exception:
            return item
    return batch  # only the batch as a whole fails


def _empty(module: Modality) -> Tensor:
    device, dtype = module.input_device_dtype()
    return torch.empty(0, module.embed_dim, device=device, dtype=dtype)


def _progress(iterable: range, *, total: int, desc: str, enabled: bool | None) -> Iterable[int]:
    if enabled is False or (enabled is None and total <= 1):
        return iterable
    from tqdm.auto import tqdm

    # disable=None: tqdm shows the bar only on a terminal unless the caller forced it on
    return tqdm(iterable, total=total, desc=f"embed {desc}", unit="batch", disable=None if enabled is None else False)


def _moved_anchor(folder: Path) -> dict[str, Any]:
    """Config override for a converted anchor-tower modality whose output directory was moved or copied.

    ``bindcore convert`` records ``OUT/anchor`` by absolute path; when that path is gone but the modality's
    sibling ``anchor`` folder exists (the whole ``OUT`` moved), point the anchor there instead.
    """
    from bindcore.io import read_meta

    anchor = read_meta(folder).get("config", {}).get("anchor")
    model = anchor.get("model") if isinstance(anchor, Mapping) else None
    if not isinstance(model, str) or not model.startswith("local-dir:"):
        return {}
    recorded = Path(model[len("local-dir:"):])
    if recorded.is_dir():
        return {}
    # `bindcore convert` writes OUT/anchor beside OUT/<name>; a `bindcore train` run directory has RUN/anchor above
    # RUN/modalities/<name> (and a RUN/recipe.yaml). Any other grandparent's `anchor` folder is someone else's.
    candidates = [folder.parent / "anchor"]
    if folder.parent.name == "modalities" and (folder.parent.parent / "recipe.yaml").is_file():
        candidates.append(folder.parent.parent / "anchor")
    for candidate in candidates:
        if (candidate / "open_clip_config.json").is_file():
            return {"anchor": {**anchor, "model": f"local-dir:{candidate.resolve()}"}}
    return {}


def model_root(path: str | os.PathLike[str]) -> Path:
    """Where the saved modalities of ``path`` are: ``path/modalities`` for a ``bindcore train`` run directory,
    else ``path`` itself (a ``bindcore convert`` output or one saved modality)."""
    from bindcore.io import CONFIG_FILE

    base = Path(path)
    if not (base / CONFIG_FILE).is_file() and (base / "recipe.yaml").is_file() and (base / "modalities").is_dir():
        return base / "modalities"
    return base


def _modality_dir(root: str | os.PathLike[str], name: str) -> Path:
    from bindcore.io import CONFIG_FILE

    base = model_root(root)
    return base if (base / CONFIG_FILE).is_file() else base / name


def available_modalities(root: str | os.PathLike[str]) -> list[str]:
    """Names of the saved modalities directly under ``root`` (sub-directories with ``bindcore.json``)."""
    from bindcore.io import CONFIG_FILE

    base = model_root(root)
    if not base.is_dir():
        raise ConfigError(f"{base} is not a directory")
    return sorted(p.name for p in base.iterdir() if (p / CONFIG_FILE).is_file())


# -- arithmetic and retrieval -------------------------------------------------------------------------
def compose(*terms: Tensor, weights: Sequence[float] | None = None, normalize: bool = True) -> Tensor:
    """Embedding arithmetic as in the ImageBind paper: L2-normalise each term, scale, sum (then re-normalise).

    ``compose(image_emb, audio_emb)`` gives a query that retrieves items matching both. Terms broadcast
    (e.g. one ``(D,)`` audio embedding added to ``(N, D)`` images); negative weights subtract.
    """
    if not terms:
        raise ConfigError("compose needs at least one embedding")
    weights = [1.0] * len(terms) if weights is None else list(weights)
    if len(weights) != len(terms):
        raise ConfigError(f"compose got {len(terms)} embeddings but {len(weights)} weights")
    total = sum(w * F.normalize(t.float(), dim=-1) for w, t in zip(weights, terms, strict=True))
    return F.normalize(total, dim=-1) if normalize else total


def top_k(queries: Tensor, corpus: Tensor, k: int = 5) -> tuple[Tensor, Tensor]:
    """Cosine similarity top-``k``: ``(Q, D)`` queries × ``(N, D)`` corpus → ``(scores, indices)``, each ``(Q, k')``
    with ``k' = min(k, N)``, best first.

    Queries are always a batch: a single ``(D,)`` embedding is refused rather than silently batched, so the
    result's shape never depends on the input's rank; pass ``q[None]`` for one query."""
    if queries.ndim != 2:
        fix = "for a single (D,) query pass q[None]" if queries.ndim == 1 else "pass one row per query"
        raise InputError(queries, f"top_k takes 2-D (Q, D) queries, got {queries.ndim}-D", fix=fix)
    if corpus.ndim != 2:
        raise InputError(corpus, f"top_k takes a 2-D (N, D) corpus, got {corpus.ndim}-D",
                         fix="pass one row per corpus item")
    if queries.shape[-1] != corpus.shape[-1]:
        raise ConfigError(f"query dimension {queries.shape[-1]} does not match corpus dimension {corpus.shape[-1]} "
                          f"(embeddings from different models cannot be compared)")
    scores = F.normalize(queries.float(), dim=-1) @ F.normalize(corpus.float(), dim=-1).T
    return scores.topk(min(k, corpus.shape[0]), dim=-1)


# -- embedding files ------------------------------------------------------------------------------------
def index_path_for(out: str | os.PathLike[str]) -> Path:
    """Default row-index path for an embedding file: ``emb.npy`` → ``emb.jsonl``."""
    return Path(out).with_suffix(".jsonl")


def save_embeddings(path: str | os.PathLike[str], embeddings: Tensor, records: Sequence[Mapping[str, Any]], *,
                    modality: str, index_path: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Write ``embeddings`` (``.npy`` or ``.safetensors``) and a JSONL index with one record per *input*
    (``row`` is the embedding row, ``null`` for skipped inputs). Returns both paths."""
    import numpy as np

    from bindcore.io import atomic_file

    target = Path(path)
    if target.suffix not in (".npy", ".safetensors"):
        raise ConfigError(f"{target}: embedding files must end in .npy or .safetensors")
    array = embeddings.detach().float().cpu()
    with atomic_file(target) as handle:
        if target.suffix == ".npy":
            np.save(handle, array.numpy())
        else:
            from bindcore.safetensors_io import write_safetensors  # follows the umask (save_file does not)

            write_safetensors(handle, {"embeddings": array}, metadata={"modality": modality})
    index = Path(index_path) if index_path else index_path_for(target)
    with atomic_file(index, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"modality": modality, **record}, ensure_ascii=False) + "\n")
    return target, index


def load_embeddings(path: str | os.PathLike[str], index_path: str | os.PathLike[str] | None = None
                    ) -> tuple[Tensor, list[dict[str, Any]]]:
    """Read an embedding file and its index (records of skipped inputs included; ``[]`` if no index exists)."""
    import numpy as np

    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"embedding file {source} does not exist")
    if source.suffix == ".npy":
        embeddings = torch.from_numpy(np.load(source, allow_pickle=False))
    elif source.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(source))
        if "embeddings" not in tensors:
            raise ConfigError(f"{source} has no 'embeddings' tensor")
        embeddings = tensors["embeddings"]
    else:
        raise ConfigError(f"{source}: embedding files must end in .npy or .safetensors")
    if embeddings.ndim != 2:
        raise ConfigError(f"{source}: expected a (N, D) array, got shape {tuple(embeddings.shape)}")
    index = Path(index_path) if index_path else index_path_for(source)
    records = [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if index.is_file() else []
    rows = [r.get("row") for r in records if r.get("row") is not None]
    if records and sorted(rows) != list(range(embeddings.shape[0])):
        raise ConfigError(f"{index} does not match {source}: its rows do not cover 0..{embeddings.shape[0] - 1}")
    return embeddings, records


__all__ = [
    "BindModel",
    "EmbedResult",
    "available_modalities",
    "compose",
    "index_path_for",
    "load_embeddings",
    "save_embeddings",
    "top_k",
]
