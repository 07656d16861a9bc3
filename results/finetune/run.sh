#!/usr/bin/env bash
# Issue 24, part 4: the learning curve of `lqer finetune` on A-DSSS, against training from
# scratch on the same patches. For each fold, budget of labelled training patches (originals;
# their offline-augmented copies come along, data.train_limit) and seed: lqer-padsd fine-tuned
# for 5 epochs, and LQER from scratch with the CPU recipe (configs/padsd-cpu.yaml's settings,
# 10 epochs). Each run picks its epoch and threshold on a hold-out of its own patches and
# scores the fold's validation/ split once as test. Run from the repository root with
# ../shared/datasets beside it; finished runs are skipped, so it resumes by run.
#   bash results/finetune/run.sh [FOLDS [BUDGETS [SEEDS]]]   e.g. bash results/finetune/run.sh 0
# Starts (STARTS, default all three): "finetune", `lqer finetune` as it is (10 epochs at the
# CPU recipe's rates, from lqer-padsd's weights); "gentle", its first default (5 epochs at
# 1e-4 / 1e-3), which lost to it on the runs' own hold-outs; "scratch", the CPU recipe from
# random weights.
# Budget 0 is lqer-padsd as shipped, scored on the fold's validation/ at its stored threshold.
# Each run's config.yaml, history.csv and test_metrics.json are copied to results/finetune/runs/.
set -euo pipefail
folds=${1:-0,1,2,3,4} budgets=${2:-10,25,50,100,250,all} seeds=${3:-0,1,2}
ADSSS=../shared/datasets/A-DSSS
COMMON=(--set train.progress=false --set train.threads="${THREADS:-1}")
for fold in ${folds//,/ }; do
  shipped=results/finetune/runs/fold$fold-0-shipped
  if [ ! -f "$shipped/test_metrics.json" ]; then
    mkdir -p "$shipped" runs/finetune
    ${LQER:-lqer} evaluate --data "$ADSSS/fold$fold/validation" --out "runs/finetune/fold$fold-0.json"
    mv "runs/finetune/fold$fold-0.json" "$shipped/test_metrics.json"
  fi
  for budget in ${budgets//,/ }; do
    limit=(); [ "$budget" = all ] || limit=(--set data.train_limit="$budget")
    for seed in ${seeds//,/ }; do
      for start in ${STARTS:-finetune gentle scratch}; do
        name=fold$fold-$budget-$start-seed$seed out=runs/finetune/$name
        [ -f "results/finetune/runs/$name/test_metrics.json" ] && continue
        rm -rf "$out"  # an unfinished run of ours: short runs start again
        if [ "$start" = finetune ]; then
          ${LQER:-lqer} finetune "$ADSSS/fold$fold" --out "$out" --seed "$seed" \
            "${limit[@]}" "${COMMON[@]}"
        elif [ "$start" = gentle ]; then
          ${LQER:-lqer} finetune "$ADSSS/fold$fold" --out "$out" --seed "$seed" --epochs 5 \
            --set train.lr_backbone=1e-4 --set train.lr_head=1e-3 "${limit[@]}" "${COMMON[@]}"
        else
          ${LQER:-lqer} train -c configs/padsd-cpu.yaml --data "$ADSSS" --set data.fold="$fold" \
            --out "$out" --seed "$seed" "${limit[@]}" "${COMMON[@]}"
        fi
        mkdir -p "results/finetune/runs/$name"
        cp "$out"/config.yaml "$out"/history.csv "$out"/test_metrics.json \
          "results/finetune/runs/$name/"
      done
    done
  done
done
