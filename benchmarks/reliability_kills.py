"""SIGKILL a training run at random moments, resume it each time, and compare the final weights with an
uninterrupted run (they must be bit-identical), counting kills that landed while a checkpoint was being written.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/reliability_kills.py --runs 3 --kills-per-run 4 --seed 0

Each run is the stub recipe of ``bindcore.testing.stubs.tiny_recipe`` (12 epochs, a checkpoint every 3 steps, one
DataLoader worker, augmentation on) in a subprocess; a kill lands uniformly at random in the training part of the
process's life (after imports, measured on the uninterrupted run).
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = """
import sys
from bindcore.plugins import set_registry
from bindcore.testing.stubs import stub_registry, tiny_recipe
set_registry(stub_registry("toya", "toyb"))
from bindcore.recipe import validate_recipe
from bindcore.train.trainer import train
raw = tiny_recipe(steps_epochs=12, checkpoint_every=3)
raw["data"]["workers"] = 1
raw["modalities"]["toya"]["train"]["augmentation"] = {"gaussian_noise": 0.05, "image_crop": {"scale": [0.3, 1.0]}}
raw["modalities"]["toyb"]["train"]["learnable_temperature"] = True
print("ready", flush=True)
train(validate_recipe(raw), sys.argv[1], log=lambda m: None)
"""


def _weights(out: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return {name: load_file(str(out / "modalities" / name / "model.safetensors")) for name in ("toya", "toyb")}


def _identical(a: dict, b: dict) -> bool:
    import torch

    return all(torch.equal(a[m][k], b[m][k]) for m in a for k in a[m])


def _start(script: Path, out: Path) -> tuple[subprocess.Popen, float]:
    process = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    process.stdout.readline()  # "ready": imports done, training starts
    return process, time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills-per-run", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        script = root / "run.py"
        script.write_text(SCRIPT)
        process, started = _start(script, root / "reference")
        process.wait()
        span = time.perf_counter() - started
        reference = _weights(root / "reference")
        print(f"uninterrupted run: {span:.1f}s of training")
        rows, kills, mid_write, identical_runs = [], 0, 0, 0
        for run in range(args.runs):
            out = root / f"run{run}"
            for _ in range(args.kills_per_run):
                process, started = _start(script, out)
                time.sleep(rng.uniform(0.0, span))
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    kills += 1
                    if list((out / "checkpoints").glob(".checkpoint-*.tmp-*")):
                        mid_write += 1
            process, _ = _start(script, out)  # the last resume runs to the end
            assert process.wait() == 0, f"run {run}: the final resume failed"
            same = _identical(reference, _weights(out))
            identical_runs += same
            rows.append((run, same))
            print(f"run {run}: final weights {'identical' if same else 'DIFFERENT'} to the uninterrupted run")
        print(f"\n{kills} SIGKILLs ({mid_write} while a checkpoint was being written), {args.runs} runs resumed: "
              f"{identical_runs}/{args.runs} bit-identical to the uninterrupted run")


if __name__ == "__main__":
    main()
