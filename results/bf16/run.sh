#!/usr/bin/env bash
# Issue 12: does bf16 autocast (with channels_last) change accuracy? LQER at 64 px, where
# training picks bf16 on a CPU with AMX, against the same runs in float32 (train.amp=false),
# 2 seeds each, on a stratified 8,000-patch subset of P-ADSD train/ (6,800 to train, 1,200
# held out); the published validation/ split is not read. Run from the repository root;
# `python results/bf16/collect.py` writes results.md.
set -euo pipefail
for seed in 0 1; do
  for amp in true false; do
    name=$([ $amp = true ] && echo bf16 || echo fp32)-seed$seed
    out=runs/bf16/$name
    args=(--config configs/padsd.yaml --out "$out" --set model.weights=none
          --set data.image_size=64 --set data.limit=8000 --set data.test_split=none
          --set train.epochs=5 --set train.seed=$seed --set train.amp=$amp
          --set train.batch_size=64 --set train.lr_backbone=1e-3 --set train.lr_head=3e-3
          --set train.progress=false --set train.threads=1)
    if [ -e "$out/history.csv" ] && [ "$(wc -l < "$out/history.csv")" -gt 5 ]; then continue; fi
    if [ -e "$out/last.pt" ]; then lqer train --resume "${args[@]}"; else lqer train "${args[@]}"; fi
    mkdir -p results/bf16/$name
    cp "$out"/config.yaml "$out"/history.csv results/bf16/$name/
  done
done
