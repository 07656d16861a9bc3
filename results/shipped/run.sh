#!/usr/bin/env bash
# Issue 12, part 4: the model that ships with lqer. LQER from scratch on all of P-ADSD train/
# with the recipe chosen on the hold-out (results/recipe/curve.md); best epoch and thresholds
# are chosen on the stratified 15% hold-out of train/, and the published validation/ split is
# scored once, as the test split. Resumes where it stopped. Run from the repository root.
set -euo pipefail
size=${SIZE:-32} epochs=${EPOCHS:-12} threads=${THREADS:-2}
out=runs/shipped/lqer-padsd
args=(--config configs/padsd.yaml --out "$out" --set model.weights=none
      --set data.image_size=$size --set train.epochs=$epochs --set train.batch_size=64
      --set train.lr_backbone=1e-3 --set train.lr_head=3e-3 --set train.progress=false
      --set train.threads=$threads)
if [ -e "$out/last.pt" ]; then lqer train --resume "${args[@]}"; else lqer train "${args[@]}"; fi
lqer ship "$out" --name lqer-padsd --out src/lqer/weights
mkdir -p results/shipped/run
cp "$out"/config.yaml "$out"/history.csv "$out"/test_metrics.json "$out"/test_predictions.csv \
  results/shipped/run/
