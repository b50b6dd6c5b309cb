"""A 50-step toy binding run under ``torchrun`` with a process group (NCCL on CUDA, gloo on CPU) and
``precision: bf16``, for :file:`benchmarks/gpu_check.sh`: ``--stop-at N`` ends the run at step N (after its
checkpoint, like a crash), the same command without it resumes; ``--compare DIR`` reports how far the final weights
are from another run's.

    torchrun --nproc_per_node 1 benchmarks/gpu_toy_run.py --out /tmp/toy --stop-at 30 --json OUT/toy-stop.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


class _Stop(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop-at", type=int, default=None)
    parser.add_argument("--compare", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from safetensors.torch import load_file

    from bindcore.plugins import set_registry
    from bindcore.recipe import validate_recipe
    from bindcore.testing.stubs import stub_registry, tiny_recipe
    from bindcore.train.checkpoint import list_checkpoints
    from bindcore.train.trainer import train

    cuda = torch.cuda.is_available()
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)  # torchrun's environment; the trainer finds it initialised
    probe = torch.ones(1, device="cuda" if cuda else "cpu")
    dist.all_reduce(probe)
    set_registry(stub_registry("toya", "toyb"))
    # 64 scenes, batch 16: 4 steps per epoch per pair; 6.25 epochs × 2 pairs = 50 steps
    raw = tiny_recipe(steps_epochs=6.25, checkpoint_every=10, log_every=10, device="cuda" if cuda else "cpu",
                      precision="bf16")
    raw["modalities"]["toyb"]["train"]["grad_accumulation"] = 2

    def stop(step: int, batch: Any) -> None:
        if args.stop_at is not None and step == args.stop_at:
            raise _Stop

    before = [p.name for p in list_checkpoints(args.out / "checkpoints")] if args.out.exists() else []
    report: dict[str, Any] = {"backend": backend, "world_size": dist.get_world_size(), "all_reduce": probe.item(),
                              "device": torch.cuda.get_device_name() if cuda else "cpu", "precision": "bf16",
                              "checkpoints_before": before}
    started = time.perf_counter()
    try:
        result = train(validate_recipe(raw), args.out, log=print, step_hook=stop)
        report.update(finished=True, steps=result.steps, final_losses=result.final_losses)
    except _Stop:
        report.update(finished=False, stopped_at=args.stop_at)
    report["seconds"] = time.perf_counter() - started
    report["checkpoints_after"] = [p.name for p in list_checkpoints(args.out / "checkpoints")]
    if report["finished"]:
        weights = {n: load_file(str(args.out / "modalities" / n / "model.safetensors")) for n in ("toya", "toyb")}
        report["weights_finite"] = all(bool(torch.isfinite(v).all()) for w in weights.values() for v in w.values())
        if args.compare is not None:
            other = {n: load_file(str(args.compare / "modalities" / n / "model.safetensors")) for n in weights}
            report["max_abs_diff_vs_compare"] = max(float((weights[n][k].float() - other[n][k].float()).abs().max())
                                                    for n in weights for k in weights[n])
    dist.destroy_process_group()
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
