#!/usr/bin/env bash
# GPU check for the speed issue: training throughput of ResNet18 and LQER, then a short real
# P-ADSD training read from the compact pack. Under 8 minutes on one H100; no network needed.
#
# Before (on a machine with the data):  python benchmarks/pack_padsd.py   # -> .pack/padsd
# Copy the checkout together with .pack/ (git-ignored, about 58 MB) to the GPU machine, then:
#     bash benchmarks/gpu_check.sh [OUT_DIR]        # logs to OUT_DIR (default $OUT or gpu_check)
# Needs PyTorch with CUDA and the package's own dependencies (numpy, pillow, scikit-learn, scipy,
# pyyaml, tqdm); the package itself is taken from src/, so no install is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
OUT_DIR="${1:-${OUT:-gpu_check}}"
PACK="${PACK:-.pack/padsd}"
mkdir -p "$OUT_DIR"
started=$SECONDS
step() { echo; echo "== $1 ($((SECONDS - started)) s elapsed)"; }

step "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT_DIR/gpu.txt"
python - <<'EOF'
import torch, sklearn, scipy, yaml, tqdm, PIL  # noqa: F401  (fails early if one is missing)
assert torch.cuda.is_available(), "no CUDA device visible"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
EOF
test -f "$PACK/index.csv" || { echo "no pack at $PACK: run benchmarks/pack_padsd.py first"; exit 1; }

step "throughput, eager: 224/112/64 px at batch 256, and batch 128/512 at 224 px"
timeout 150 python benchmarks/train_throughput.py --sizes 224 112 64 --batch-sizes 256 \
    | tee "$OUT_DIR/throughput.md" || echo "eager run failed or timed out"
timeout 90 python benchmarks/train_throughput.py --sizes 224 --batch-sizes 128 512 \
    | tail -n +5 | tee -a "$OUT_DIR/throughput.md" || echo "batch-size run failed or timed out"

step "throughput, torch.compile'd backbone: 224 px, batch 256 (compilation in the warm-up)"
timeout 150 python benchmarks/train_throughput.py --sizes 224 --batch-sizes 256 --compile \
    --warmup 15 | tee "$OUT_DIR/throughput_compiled.md" || echo "compiled run failed or timed out"

step "LQER on P-ADSD from the pack: 224 px, 15 epochs, batch 256, eager"
timeout 150 python - "$PACK" "$OUT_DIR" <<'EOF' | tee "$OUT_DIR/train_padsd.txt"
import json, os, sys, time
from pathlib import Path

from lqer.config import load_config
from lqer.data.pack import load_packed_experiment
from lqer.train import fit

pack, out = sys.argv[1], Path(sys.argv[2])
cfg = load_config("configs/padsd.yaml", [
    "model.weights=none", "train.batch_size=256", "train.progress=false",
    f"out_dir={out / 'run-padsd-lqer'}", *os.environ.get("GPU_CHECK_SET", "").split(),
])  # GPU_CHECK_SET="data.limit=300 data.image_size=32" for a dry run on a CPU
started = time.perf_counter()
data = load_packed_experiment(pack, cfg.data, cfg.train.seed)
loaded = time.perf_counter()
print(f"pack read and resized to {cfg.data.image_size} px in {loaded - started:.1f} s")
run = fit(cfg, data=data)
total = time.perf_counter() - loaded
rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
epochs = sum(r["epoch_time"] for r in rows)
images = len(data["train"]) * len(rows)
test = json.loads((run / "test_metrics.json").read_text())
print(f"{len(rows)} epochs: {epochs:.1f} s in epochs ({images / epochs:.0f} training images/s incl. "
      f"validation), {total:.1f} s with model set-up and test scoring")
print(f"test = P-ADSD validation/ ({test['n']} images): accuracy {test['accuracy']:.4f}, "
      f"AUC {test['auc']:.4f}; model selected on a 15% hold-out of train/")
EOF

step "done"
echo "logs in $OUT_DIR; total $((SECONDS - started)) s"
