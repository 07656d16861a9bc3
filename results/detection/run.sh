#!/usr/bin/env bash
# Issue 22: the detector runs, in resumable pieces. Run from the repository root, with
# ../shared/datasets beside the checkout:  bash results/detection/run.sh HEAD SEED [THREADS]
# HEAD: lqer or classical (its twin of equal parameter count). TAG names a recipe's series:
# TAG=lr1e-4 for the configuration's present recipe (train.lr 1e-4, 100 warmup steps); the
# untagged seeds 0 and 1 ran at train.lr 1e-3 without warmup. A stopped run resumes from its
# last.pt; its small files are committed, its checkpoints are not.
set -euo pipefail
head=$1 seed=$2 threads=${3:-1}
out=results/detection/runs/fcos-$head${TAG:+-$TAG}-seed$seed  # TAG: a recipe's series
args=(--config configs/arcade-fcos.yaml --head "$head" --seed "$seed" --out "$out"
      --set train.threads="$threads" --set train.progress=false)
if [ -f "$out/last.pt" ]; then args+=(--resume); fi
${LQER:-lqer} detector train "${args[@]}"
