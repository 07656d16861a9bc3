#!/usr/bin/env bash
# Issue 12, part 1: validation AUC against CPU minutes, for input sizes and epoch counts.
# LQER from scratch on all of P-ADSD train/ (24,052 patches); each epoch is scored on a
# stratified 15% hold-out of train/ (data.val_fraction), and the published validation/ split
# is not read at all (data.test_split=none). Run from the repository root; each size resumes
# where it stopped (lqer train --resume). `python results/recipe/collect.py` writes the curve.
set -euo pipefail
threads=${THREADS:-1}
for spec in 32:10 48:8 64:8; do
  size=${spec%%:*} epochs=${spec##*:}
  out=runs/recipe/lqer-${size}px
  args=(--config configs/padsd.yaml --out "$out" --set model.weights=none
        --set data.image_size=$size --set data.test_split=none --set train.epochs=$epochs
        --set train.batch_size=64 --set train.lr_backbone=1e-3 --set train.lr_head=3e-3
        --set train.progress=false --set train.threads=$threads)
  if [ -e "$out/last.pt" ]; then lqer train --resume "${args[@]}"; else lqer train "${args[@]}"; fi
  mkdir -p results/recipe/lqer-${size}px
  cp "$out"/config.yaml "$out"/history.csv results/recipe/lqer-${size}px/
done
