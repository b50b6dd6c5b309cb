"""Fine-tuning a bound modality from saved weights: ``modalities.<name>.init`` (where the weights come from),
``train.freeze`` (which parameters stay frozen), ``train.lora`` (adapters instead of weights), the optimiser's
parameter groups and the per-modality trainable-parameter count.

``init`` is a saved modality directory (``bindcore convert``'s ``OUT/<name>``, a run's ``RUN/modalities/<name>``,
with or without LoRA adapters) or a checkpoint file of a run (``RUN/checkpoints/step-*.pt``, read with the run's
``recipe.yaml``). The plugin config comes from the saved weights; a recipe key may change it only where the
parameter shapes stay the same (dropout, drop path, preprocessing), else it is a recipe error naming both values.
The weights' licence travels into the trained directory.

``freeze`` entries (the ImageBind layout every ViT-style plugin shares: ``encoder.{proj,stem_norm,cls_token,
pos_embed}``, ``encoder.trunk.blocks.<i>.*``, ``head.*``): ``stem`` (everything before the first trunk block),
``blocks`` (every trunk block), ``blocks.A-B`` / ``blocks.A`` (blocks A..B inclusive, from 0), ``head``, ``trunk``
(everything but the head), or a glob over parameter names (``encoder.trunk.blocks.*.norm_*``). A plugin can add
or redefine names with a ``freeze_groups`` class attribute (name → globs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bindcore.errors import ConfigError
from bindcore.recipe.finetune import frozen_names, saved_init


def apply_freeze(module: nn.Module, entries: Iterable[str]) -> set[str]:
    """Set ``requires_grad=False`` on the parameters ``entries`` select; returns their names."""
    frozen, problems = frozen_names([n for n, _ in module.named_parameters()], entries,
                                    getattr(module, "freeze_groups", None))
    if problems:
        raise ConfigError("train.freeze: " + "; ".join(problems))
    for name, param in module.named_parameters():
        if name in frozen:
            param.requires_grad_(False)
    return frozen


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(module.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups over the trainable parameters only: weight decay on weight matrices, none on norms, biases
    (``bias_k``/``bias_v`` included), positions, CLS tokens and temperatures (open_clip's rule)."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        leaf = name.rsplit(".", 1)[-1]
        exempt = param.ndim < 2 or "bias" in leaf or "pos_embed" in name or "cls_token" in name
        (no_decay if exempt else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _checkpoint_weights(path: Path, name: str, module: nn.Module, saved: Mapping[str, Any]) -> dict[str, Any]:
    """The plain weights of ``name`` in a run's checkpoint (a LoRA run's adapters merged in)."""
    from bindcore.nn.lora import add_lora, merge_lora
    from bindcore.train.checkpoint import load_checkpoint

    payload = load_checkpoint(path)
    prefix = "modality."
    state = {k[len(prefix):]: v for k, v in payload["heads"][name].items() if k.startswith(prefix)}
    lora = saved["recipe"].modalities[name].train.lora
    if lora is None:
        return state
    import copy

    scratch = copy.deepcopy(module)
    add_lora(scratch, lora.targets, rank=lora.rank, alpha=lora.alpha, dropout=lora.dropout)
    scratch.load_state_dict(state, strict=True)
    return merge_lora(scratch).state_dict()


def load_init_weights(module: nn.Module, init: Path, name: str) -> dict[str, Any]:
    """Load the weights of ``init`` into ``module`` (built from the merged config), strictly; a saved directory
    with LoRA adapters gives its merged weights. Sets the module's licence and source; returns :func:`saved_init`."""
    from bindcore.io import load_modality
    from bindcore.nn.lora import has_lora, merge_lora

    saved = saved_init(init, name)
    if init.is_dir():
        loaded = load_modality(init)
        if has_lora(loaded):
            merge_lora(loaded)
        state = loaded.state_dict()
    else:
        state = _checkpoint_weights(init, name, module, saved)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ConfigError(f"modalities.{name}.init: the weights of {init} do not fit the {name} model "
                          f"({' '.join(str(error).split())[:400]})") from None
    module.weights_license = saved["license"]
    module.weights_source = f"fine-tuned from {saved['describe']}"
    return saved


def prepare_modality(name: str, module: nn.Module, block: Any, seed: int, log: Callable[[str], None]) -> None:
    """Apply ``init``, then ``lora`` or ``freeze`` of ``modalities.<name>`` to ``module``; log what trains."""
    from bindcore.io import NON_COMMERCIAL_LICENSES
    from bindcore.nn.lora import add_lora
    from bindcore.seeds import seed_of

    settings = block.train
    if block.init is not None:
        saved = load_init_weights(module, Path(block.init), name)
        licence = saved["license"]
        note = (f"; licensed {licence} (non-commercial use only), which the trained weights keep"
                if licence in NON_COMMERCIAL_LICENSES else (f"; licence {licence}" if licence else ""))
        log(f"{name}: weights from {saved['describe']}{note}")
    if settings.lora is not None:
        lora = settings.lora
        torch.manual_seed(seed_of("lora", seed, name) % 2**63)  # adding a modality changes no other's adapters
        adapted = add_lora(module, lora.targets, rank=lora.rank, alpha=lora.alpha, dropout=lora.dropout)
        log(f"{name}: LoRA rank {lora.rank} on {len(adapted)} weight matrices")
    elif settings.freeze:
        apply_freeze(module, settings.freeze)
    trainable, total = count_parameters(module)
    log(f"{name}: trainable {trainable:,} of {total:,} parameters")


def export_merged(run_dir: str | Path, out: str | Path, *, overwrite: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, Path]:
    """Write every modality of ``run_dir/modalities`` (or of a folder of modality directories) as a plain modality
    directory ``out/<name>``: LoRA adapters merged into the weights, the licence kept; ones without adapters are
    copied. ``out`` appears whole or not at all."""
    import shutil
    import warnings

    from bindcore.io import CONFIG_FILE, atomic_directory, load_modality, read_meta
    from bindcore.nn.lora import has_lora, merge_lora, read_adapter_config
    from bindcore.run_setup import MODALITIES_DIR

    run_dir = Path(run_dir)
    folder = run_dir / MODALITIES_DIR if (run_dir / MODALITIES_DIR).is_dir() else run_dir
    names = sorted(p.name for p in folder.iterdir() if (p / CONFIG_FILE).is_file()) if folder.is_dir() else []
    if not names:
        raise ConfigError(f"{run_dir} holds no saved modalities (expected {run_dir / MODALITIES_DIR}/<name>/"
                          f"{CONFIG_FILE}); train first: bindcore train RECIPE --out {run_dir}")
    written: dict[str, Path] = {}
    if (Path(out).exists() or Path(out).is_symlink()) and not overwrite:
        raise ConfigError(f"{out} already exists; pass --overwrite or choose another OUT")
    with atomic_directory(out, overwrite=overwrite) as staging:
        for name in names:
            source = folder / name
            try:
                adapter = read_adapter_config(source)
            except ValueError as error:
                raise ConfigError(f"{source}: {error}; train the run again") from None
            if adapter is None:
                shutil.copytree(source, staging / name)
                log(f"{name}: copied (no adapters)")
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # the licence is kept, not news here
                    module = load_modality(source)
                if has_lora(module):
                    merge_lora(module)
                meta = read_meta(source)
                module.save(staging / name, license=meta.get("license"),
                            source=f"{meta.get('source') or 'bindcore'}, LoRA merged by bindcore export")
                log(f"{name}: LoRA rank {adapter['rank']} merged into {len(adapter['weights'])} weight matrices")
            written[name] = Path(out) / name
    return written


__all__ = ["apply_freeze", "count_parameters", "export_merged", "load_init_weights", "param_groups", "prepare_modality"]
