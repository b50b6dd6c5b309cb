"""Peak memory of ``bindcore convert imagebind`` versus the checkpoint's size.

Builds a synthetic checkpoint: the state dict of Meta's own ``ImageBindModel`` (its random initialisation; sizes
below; run with the reference environment that ``../shared/reference/install-reference VENV`` builds, as
``bench_embed.py``), saves it with ``torch.save``, then converts it in a fresh
subprocess while a thread samples the process's anonymous resident memory (``RssAnon``: heap that the process
holds) and file-backed resident memory (``RssFile``: mostly pages of the memory-mapped checkpoint, which the kernel
can drop at any time) every 5 ms; both are reported above their level before the conversion started.

    OMP_NUM_THREADS=1 ../refvenv/bin/python benchmarks/bench_embed_convert.py             # ~1.3 GB checkpoint
    OMP_NUM_THREADS=1 ../refvenv/bin/python benchmarks/bench_embed_convert.py --scale small
    OMP_NUM_THREADS=1 ../refvenv/bin/python benchmarks/bench_embed_convert.py --scale huge   # 4.8 GB, needs ~12 GB RAM

Sizes (``medium``): audio, depth, thermal, IMU at ``imagebind_huge`` sizes; vision 768 wide × 12 blocks and text
512 × 12. ``huge`` is ``imagebind_huge`` throughout (vision 1280 × 32, text 1024 × 24): the released checkpoint's
size, 4.8 GB; building it holds the whole state dict in memory once, and the temporary directory needs ~10 GB
of disk (checkpoint plus converted output).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCALES = {
    "huge": {"vision": (1280, 32, 16), "text": (1024, 24, 16), "audio": (768, 12, 12), "depth": (384, 12, 8),
             "thermal": (768, 12, 12), "imu": (512, 6, 8)},
    "medium": {"vision": (768, 12, 12), "text": (512, 12, 8), "audio": (768, 12, 12), "depth": (384, 12, 8),
               "thermal": (768, 12, 12), "imu": (512, 6, 8)},
    "small": {name: (64, 2, 4) for name in ("vision", "text", "audio", "depth", "thermal", "imu")},
}


def _status() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(("RssAnon:", "RssFile:")):
                key, amount, _unit = line.split()
                values[key[:-1]] = int(amount) * 1024
    return values


def build_checkpoint(path: Path, scale: str) -> dict[str, int]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch
    from bench_embed import INSTALL_HINT

    try:
        from imagebind.models.imagebind_model import ImageBindModel
    except ImportError as error:
        raise SystemExit(f"{INSTALL_HINT} ({error})") from None
    kwargs = {"out_embed_dim": 1024 if scale != "small" else 32}
    for name, (width, depth, num_heads) in SCALES[scale].items():
        kwargs.update({f"{name}_embed_dim": width, f"{name}_num_blocks": depth, f"{name}_num_heads": num_heads})
    torch.manual_seed(0)
    torch.save(ImageBindModel(**kwargs).state_dict(), path)
    return {name: num_heads for name, (_, _, num_heads) in SCALES[scale].items()}


def child(source: str, out: str, heads: str) -> None:
    import bindcore.convert  # imports first: code is not what we measure

    bindcore.list_modalities()
    import bindcore.anchor

    peak = {"RssAnon": 0, "RssFile": 0}
    baseline = _status()
    running = True

    def sample() -> None:
        while running:
            for key, value in _status().items():
                peak[key] = max(peak[key], value)
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    report = bindcore.convert.convert_imagebind(source, out, heads=json.loads(heads))
    seconds = time.perf_counter() - start
    running = False
    thread.join()
    print(json.dumps({"seconds": seconds, "peak_anon_extra": peak["RssAnon"] - baseline["RssAnon"],
                      "peak_file": peak["RssFile"] - baseline["RssFile"], "written": sorted(report.written),
                      "skipped": report.skipped}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="medium")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench_convert_") as tmp:
        source = Path(tmp) / "imagebind_synthetic.pth"
        heads = build_checkpoint(source, args.scale)
        size = source.stat().st_size
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}
        done = subprocess.run([sys.executable, __file__, "--child", str(source), str(Path(tmp) / "out"),
                               json.dumps(heads)], env=env, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        largest = max((p.stat().st_size for p in (Path(tmp) / "out").rglob("*.safetensors")), default=0)
    print("| checkpoint (MB) | peak extra heap during convert (MB) | peak extra file-backed pages (MB) | "
          "largest output file (MB) | seconds |")
    print("|---|---|---|---|---|")
    print(f"| {size / 1e6:.0f} | {result['peak_anon_extra'] / 1e6:.0f} | {result['peak_file'] / 1e6:.0f} | "
          f"{largest / 1e6:.0f} | {result['seconds']:.1f} |")
    print(f"written: {', '.join(result['written'])}; skipped: {result['skipped'] or 'none'}")


if __name__ == "__main__":
    main()
