#!/usr/bin/env bash
# Issue 22, hard-negative mining for the window classifier: scan ARCADE train/ densely with
# MODEL's seed-0 run, add its 4 strongest false candidates per frame as negatives, train again.
#   bash results/detection/mined.sh MODEL SEEDS        (from the repository root)
set -euo pipefail
model=${1:-lqer} seeds=${2:-0}
arcade=../shared/datasets/ARCADE-stenosis
out=runs/arcade-patches-mined-$model
if [ ! -d "$out/train" ]; then
  ${LQER:-lqer} data make-patches "$arcade/train/images" --annotations \
    "$arcade/train/annotations/train.json" --format coco --size 32 --frame-negatives 8 \
    --mine "results/detection/window/runs/$model-seed0/best.pt" --mine-per-frame 4 \
    --mine-sizes 64,96,128,192 --mine-stride 0.5 --mine-dense --device cpu --out "$out/train"
fi
[ -d "$out/val" ] || cp -r runs/arcade-patches/val "$out/val"
${LQER:-lqer} compare --out "results/detection/window-mined-$model" --models "$model" \
  --seeds "$seeds" --n-boot 1000 --set data.root="$out" --set data.train_split=train \
  --set data.test_split=val --set model.weights=none --set data.image_size=32 \
  --set train.epochs=10 --set train.batch_size=64 --set train.lr_backbone=1e-3 \
  --set train.lr_head=3e-3 --set train.progress=false --set train.threads=1
