#!/usr/bin/env bash
# Issue 22: the detector runs, in resumable pieces. Run from the repository root, with
# ../shared/datasets beside the checkout:  bash results/detection/run.sh HEAD SEED [THREADS]
# HEAD: lqer or classical (its twin of equal parameter count). A stopped run resumes from its
# last.pt; the small files of each run are committed, its checkpoints are not.
set -euo pipefail
head=$1 seed=$2 threads=${3:-1}
out=results/detection/runs/fcos-$head-seed$seed
args=(--config configs/arcade-fcos.yaml --head "$head" --seed "$seed" --out "$out"
      --set train.threads="$threads" --set train.progress=false)
if [ -f "$out/last.pt" ]; then args+=(--resume); fi
${LQER:-lqer} detector train "${args[@]}"
