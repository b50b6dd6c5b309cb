"""Fine-tuning the audio encoder at ImageBind-huge's audio sizes (ViT-B 768/12/12, 128×204 log-mel, 1 clip per item):
full fine-tuning vs freezing all but the last 2 blocks (and the head) vs LoRA rank 8 on every block's
qkv/out/fc1/fc2, same batch, one AdamW training step = forward, InfoNCE against fixed targets, backward, step.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_finetune.py --batch 8 --steps 4 --threads 2
    (add --grad-checkpointing for the same with gradient checkpointing)

Each mode runs in a fresh subprocess. Trainable parameters are counted by ``bindcore.train.finetune``. Peak memory
is the process's peak resident set (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) minus its resident set right
before the first step (model built, adapters on, optimiser made): what training adds on top of holding the model
(gradients, optimiser state, activations kept for backward). Step time is the median of ``--steps`` steps after one
warm-up step (which also allocates AdamW's state). Weights are random (the cost is the same).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

MODES = ("full", "last2", "lora8")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def run_mode(mode: str, batch: int, steps: int, threads: int, grad_checkpointing: bool) -> dict:
    import torch

    from bindcore.loss import InfoNCE
    from bindcore.nn.lora import add_lora
    from bindcore.plugins import modality_class
    from bindcore.train.finetune import apply_freeze, count_parameters, param_groups
    from bindcore.train.trainer import enable_grad_checkpointing

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    audio = modality_class("audio")(width=768, num_layers=12, num_heads=12, embed_dim=1024, clips_per_item=1,
                                    drop_path=0.0)
    if mode == "last2":
        apply_freeze(audio, ["stem", "blocks.0-9"])
    elif mode == "lora8":
        add_lora(audio, ["qkv", "out", "fc1", "fc2"], rank=8, alpha=16)
    if grad_checkpointing:
        enable_grad_checkpointing(audio)
    audio.train()
    trainable, total = count_parameters(audio)
    loss_fn = InfoNCE(0.05)
    optimizer = torch.optim.AdamW(param_groups(audio, 0.05), lr=1e-4)
    seconds = audio.config.clip_duration
    rate = audio.config.sample_rate
    waves = [(torch.randn(int(seconds * rate)).numpy() * 0.1, rate) for _ in range(batch)]
    x = audio.to_model_input(audio.preprocess(waves))
    targets = torch.nn.functional.normalize(torch.randn(batch, 1024), dim=-1)

    def step() -> float:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(audio(x), targets).loss
        loss.backward()
        optimizer.step()
        return time.perf_counter() - started

    before = _rss_bytes()
    step()
    times = [step() for _ in range(steps)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "trainable": trainable, "total": total, "input": list(x.shape),
            "rss_before_mib": before / 2**20, "peak_rss_mib": peak / 2**20,
            "training_peak_mib": (peak - before) / 2**20, "step_s": statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one mode, in this process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.batch, args.steps, args.threads, args.grad_checkpointing)))
        return
    rows = []
    for mode in MODES:
        command = [sys.executable, __file__, "--mode", mode, "--batch", str(args.batch), "--steps", str(args.steps),
                   "--threads", str(args.threads), *(["--grad-checkpointing"] if args.grad_checkpointing else [])]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    full = rows[0]
    print(f"input {tuple(full['input'])}, batch {args.batch}, threads {args.threads}, "
          f"grad checkpointing {'on' if args.grad_checkpointing else 'off'}")
    print("| mode | trainable parameters | % of total | training peak (MiB) | vs full | peak RSS (MiB) | step (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        share = 100 * row["trainable"] / row["total"]
        print(f"| {row['mode']} | {row['trainable']:,} of {row['total']:,} | {share:.2f} "
              f"| {row['training_peak_mib']:.0f} | {100 * row['training_peak_mib'] / full['training_peak_mib']:.0f}% "
              f"| {row['peak_rss_mib']:.0f} | {row['step_s']:.2f} |")


if __name__ == "__main__":
    main()
