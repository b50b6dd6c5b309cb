#!/usr/bin/env bash
# The GPU figures of issue 16 in one run of under 8 minutes, all written to one folder ($OUT, else ./gpu_check_out):
#   step.json      the paper's audio binding step (ViT-B 768/12/12 audio against a ViT-H-14 anchor, random weights),
#                  bf16, per-GPU batch $BATCH: samples/s and MFU with the anchor recomputed, the plain cache and the
#                  augmented cache, eager and torch.compile'd; the ViT-H-14 anchor's images/s alone
#   toy-*.json     a 50-step toy run, precision bf16, under torchrun --nproc_per_node 1 with an NCCL process group:
#                  stopped at step 30, resumed to the end, compared with an uninterrupted run
#   summary.json   the headline numbers of both; log.txt everything printed
#
# On the GPU machine (from the repository root):      bash benchmarks/gpu_check.sh
# Anywhere, on CPU, tiny sizes (checks the script):   bash benchmarks/gpu_check.sh --dry-run
# Here, before a GPU run, if packages are missing there: bash benchmarks/gpu_check.sh --fetch-wheels
#   (downloads the wheels bindcore needs beyond that machine's image into .whl/; carry .whl with the run)
# Installs nothing that imports already; what is missing comes from .whl/ into /tmp/site (never the system).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=gpu
case "${1:-}" in
  --dry-run) MODE=dry ;;
  --fetch-wheels) MODE=fetch ;;
  "") ;;
  *) echo "usage: $0 [--dry-run|--fetch-wheels]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
# name==version as in the development venv; pure-Python ones and the cp312 builds of the compiled ones
WHEELS="pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 open_clip_torch==3.3.0
ftfy==6.3.1 wcwidth==0.9.4 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12"

if [[ $MODE == fetch ]]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-path info/exclude)"
  for wheel in $WHEELS; do
    $PY -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$wheel" || exit 1
  done
  du -sh .whl
  exit 0
fi

OUT_DIR=${OUT:-$ROOT/gpu_check_out}
mkdir -p "$OUT_DIR"
exec > >(tee -a "$OUT_DIR/log.txt") 2>&1
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$ROOT:$ROOT/plugins/bind-audio${PYTHONPATH:+:$PYTHONPATH}
started=$(date +%s)
echo "== gpu_check ($MODE) $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git')"

missing=$($PY - <<'EOF'
import importlib.util
modules = ["pydantic", "pydantic_core", "annotated_types", "typing_inspection", "open_clip", "ftfy", "wcwidth",
           "soundfile", "cffi", "pycparser", "timm", "pluggy", "yaml", "click", "safetensors", "tqdm", "PIL"]
print(" ".join(m for m in modules if importlib.util.find_spec(m) is None))
EOF
)
if [[ -n $missing ]]; then
  echo "missing modules: $missing"
  if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      || exit 1
    export PYTHONPATH=$PYTHONPATH:/tmp/site
  else
    echo "no wheels in .whl/: run 'bash benchmarks/gpu_check.sh --fetch-wheels' on a machine with pip access and carry .whl"
    exit 2
  fi
fi
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

if [[ $MODE == gpu ]]; then
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$WORK/gpu.txt"
  BATCH=${BATCH:-256}
  BENCH=(--device cuda --batch "$BATCH" --steps 10 --warmup 3 --views 10 --anchor-images-batch 256 --also-compiled)
  TORCHRUN=($PY -m torch.distributed.run --nproc_per_node 1)  # torchrun, from the same Python
  STEP_LIMIT=330 TOY_LIMIT=100
else
  BENCH=(--device cpu --batch 2 --steps 1 --warmup 1 --views 2 --anchor ViT-B-32 --anchor-layers 1 --audio-layers 1
         --anchor-images-batch 2)
  TORCHRUN=($PY -m torch.distributed.run --nproc_per_node 1)  # torchrun, from the same Python
  STEP_LIMIT=300 TOY_LIMIT=200
fi

echo "== 1. the audio binding step (${BENCH[*]})"
timeout "$STEP_LIMIT" $PY benchmarks/bench_train_step.py "${BENCH[@]}" --json "$OUT_DIR/step.json"
step_rc=$?

echo "== 2. 50-step toy run, bf16, ${TORCHRUN[*]}: stop at 30, resume; and an uninterrupted reference"
toy() { timeout "$TOY_LIMIT" "${TORCHRUN[@]}" --master_port "${PORT:-29517}" benchmarks/gpu_toy_run.py "$@"; }
toy --out "$WORK/reference" --json "$OUT_DIR/toy-reference.json"; ref_rc=$?
toy --out "$WORK/resumed" --stop-at 30 --json "$OUT_DIR/toy-stop.json"; stop_rc=$?
toy --out "$WORK/resumed" --compare "$WORK/reference" --json "$OUT_DIR/toy-resume.json"; resume_rc=$?

OUT_DIR=$OUT_DIR STEP_RC=$step_rc TOY_RCS="$ref_rc $stop_rc $resume_rc" SECONDS_SO_FAR=$(( $(date +%s) - started )) \
  $PY - <<'EOF'
import json, os
from pathlib import Path

out = Path(os.environ["OUT_DIR"])

def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.is_file() else None

step, stop, resume, reference = (load(n) for n in ("step.json", "toy-stop.json", "toy-resume.json",
                                                     "toy-reference.json"))
summary = {"exit_codes": {"step": int(os.environ["STEP_RC"]),
                          "toy_reference_stop_resume": [int(c) for c in os.environ["TOY_RCS"].split()]},
           "seconds": int(os.environ["SECONDS_SO_FAR"])}
if step:
    modes = step["modes"]
    summary["step"] = {"device": step["device_name"], "batch": step["batch"], "precision": step["precision"],
                       "peak": step["peak"],
                       **{f"{mode}{'' if not c else '-compiled'}": {"samples_per_s": round(m["samples_per_s"], 1),
                                                                   "mfu": round(m["mfu"], 4)}
                          for c, group in ((False, modes), (True, step.get("compiled_modes", {})))
                          for mode, m in group.items()},
                       "views_cache_vs_recompute": step.get("speedup_views-cache"),
                       "plain_cache_vs_recompute": step.get("speedup_plain-cache"),
                       "anchor_images_per_s": (step.get("anchor_images") or {}).get("images_per_s")}
if stop and resume and reference:
    summary["toy"] = {"backend": resume["backend"], "stopped_at": stop.get("stopped_at"),
                      "checkpoints_at_resume": resume["checkpoints_before"], "finished": resume["finished"],
                      "steps": resume.get("steps"), "weights_finite": resume.get("weights_finite"),
                      "max_abs_diff_vs_uninterrupted": resume.get("max_abs_diff_vs_compare"),
                      "final_losses": resume.get("final_losses")}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
EOF
[[ -f ${WORK}/gpu.txt ]] && cp "$WORK/gpu.txt" "$OUT_DIR/gpu.txt"
rm -rf "$WORK"
echo "== done in $(( $(date +%s) - started ))s; files in $OUT_DIR"
[[ $step_rc == 0 && $ref_rc == 0 && $stop_rc == 0 && $resume_rc == 0 ]]
