#!/usr/bin/env bash
# Issue 22, the window classifier: lqer and resnet18 trained on ARCADE patches (positives at
# twice the box, the 4 neighbours, 8 whole-frame negatives per frame: vessel/catheter 0.5,
# border 0.25, background 0.25), with the CPU recipe of results/grid.sh. Run from the
# repository root:  bash results/detection/window.sh SEEDS [MODELS]
set -euo pipefail
seeds=${1:-0} models=${2:-lqer,resnet18}
arcade=../shared/datasets/ARCADE-stenosis
patches=runs/arcade-patches
for split in train val; do
  if [ ! -d "$patches/$split" ]; then
    ${LQER:-lqer} data make-patches "$arcade/$split/images" --annotations \
      "$arcade/$split/annotations/$split.json" --format coco --size 32 --frame-negatives 8 \
      --out "$patches/$split"
  fi
done
${LQER:-lqer} compare --out results/detection/window --models "$models" --seeds "$seeds" \
  --n-boot 1000 --set data.root="$patches" --set data.train_split=train \
  --set data.test_split=val --set model.weights=none --set data.image_size=32 \
  --set train.epochs=10 --set train.batch_size=64 --set train.lr_backbone=1e-3 \
  --set train.lr_head=3e-3 --set train.progress=false --set train.threads=1
