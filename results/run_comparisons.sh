#!/usr/bin/env bash
# The exact commands behind results/: run from the repository root, on the CPU, with
# ../shared/datasets beside the checkout. ImageNet weights cannot be downloaded here, so every
# model trains from scratch (model.weights=none) with one recipe; results/README.md says what
# was cut to fit a 2-core CPU. `bash results/run_comparisons.sh padsd` or `... adsss` runs one
# half (here the halves ran side by side, each pinned to one core with `taskset -c N`).
set -euo pipefail
recipe=(--set model.weights=none --set data.image_size=32 --set train.batch_size=64
        --set train.lr_backbone=1e-3 --set train.lr_head=3e-3 --set train.progress=false)
models=lqer,resnet18,cnn,qcnn,lqer-classical,lqer-separable,lqer-frozen

padsd() {
  # P-ADSD: published validation/ as test (subsampled), a 15% hold-out of train/ for selection.
  lqer compare --config configs/padsd.yaml --out runs/compare-padsd --models "$models" \
    --seeds 0,1 "${recipe[@]}" --set data.limit=2000 --set train.epochs=3
  lqer report runs/compare-padsd
  # Issue 5: the same recipe on the leakage-free regrouped split (lqer data audit --regroup);
  # compare with the lqer and resnet18 rows above (published split, same seeds).
  lqer compare --config configs/padsd.yaml --out runs/compare-padsd-regrouped \
    --models lqer,resnet18 --seeds 0,1 "${recipe[@]}" --set data.limit=2000 \
    --set train.epochs=3 --set data.split_file=results/padsd_regrouped_split.csv
  lqer report runs/compare-padsd-regrouped
}

adsss() {
  # A-DSSS: each fold's validation/ as test, a 15% hold-out of its train/ for selection.
  for k in 0 1 2 3 4; do
    lqer compare --config configs/adsss.yaml --out "runs/compare-adsss-fold$k" \
      --models "$models" --seeds 0 "${recipe[@]}" --set data.fold=$k --set train.epochs=4
    lqer report "runs/compare-adsss-fold$k"
  done
}

case "${1:-all}" in
  padsd) padsd ;;
  adsss) adsss ;;
  all) padsd; adsss ;;
  *) echo "usage: $0 [padsd|adsss|all]" >&2; exit 2 ;;
esac
