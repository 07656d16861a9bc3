#!/usr/bin/env bash
# The full-scale grid of issue 12: the exact `lqer compare` and `lqer report` calls, in
# resumable pieces. Run from the repository root, with ../shared/datasets beside the checkout.
# Each piece writes into results/grid/<name>/. A finished run is reused from its committed
# files (its checkpoints are not committed), a stopped one resumes from last.pt, and every call
# rebuilds its comparison's tables from all the finished runs in the folder, so pieces run on
# different days or machines merge. results/README.md says what is committed and why.
#
#   bash results/grid.sh PIECE [MODELS [SEEDS [FOLDS]]]
#     PIECE   padsd | padsd-regrouped | adsss | all | collect
#     MODELS  comma-separated, default (or "all"): the piece's models
#     SEEDS   comma-separated, default (or "all"): the piece's seeds; on padsd, 5 or 3 by model
#     FOLDS   adsss only, comma-separated, default (or "all"): 0,1,2,3,4
#   e.g. bash results/grid.sh padsd lqer,resnet18 0,1
#        bash results/grid.sh adsss all 0 2          # every model, seed 0, fold 2
#        DRY_RUN=1 bash results/grid.sh all           # print the commands, run nothing
# Each run trains on one thread (train.threads=1): on a 2-core CPU, two pieces can run side
# by side (e.g. `taskset -c 0 bash results/grid.sh padsd` and `taskset -c 1 ... adsss`), but
# never two that train the same run. Two pieces that shared a folder each wrote its tables
# when they ended: run either again (it reuses everything) to rebuild them with both.
set -euo pipefail

# The CPU recipe (results/recipe/): every model from scratch, one recipe for all.
RECIPE="--set model.weights=none --set data.image_size=32 --set train.epochs=10
  --set train.batch_size=64 --set train.lr_backbone=1e-3 --set train.lr_head=3e-3
  --set train.progress=false --set train.threads=1"
GRID=results/grid
LQER=${LQER:-lqer}
PYTHON=${PYTHON:-python}

FIVE=lqer,resnet18,lqer-classical,lqer-dressed,classical-dressed  # 5 seeds each on P-ADSD
THREE=lqer-separable,lqer-frozen,cnn,qcnn                          # 3 seeds each on P-ADSD
ALL=$FIVE,$THREE

run() {
  echo "+ $*"
  if [ -z "${DRY_RUN:-}" ]; then "$@"; fi
}

given() {  # given VALUE DEFAULT: VALUE unless it is empty or "all"
  if [ -z "$1" ] || [ "$1" = all ]; then echo "$2"; else echo "$1"; fi
}

pick() {  # pick MODELS GROUP: the MODELS in GROUP, comma-separated
  local m out=()
  for m in ${1//,/ }; do
    if [[ ",$2," == *",$m,"* ]]; then out+=("$m"); fi
  done
  (IFS=,; echo "${out[*]}")
}

check_models() {
  local m
  for m in ${1//,/ }; do
    if [[ ",$ALL," != *",$m,"* ]]; then echo "unknown model $m (known: $ALL)" >&2; exit 2; fi
  done
}

compare() {  # compare CONFIG FOLDER MODELS SEEDS [MORE ARGS]
  local config=$1 folder=$2 models=$3 seeds=$4
  shift 4
  # shellcheck disable=SC2086  # RECIPE splits into its --set words on purpose
  run "$LQER" compare --config "$config" --out "$folder" --models "$models" --seeds "$seeds" \
    $RECIPE "$@"
}

padsd() {
  # P-ADSD: all of train/ (a stratified 15% hold-out for selection), published validation/
  # as test.
  local models seeds five three
  models=$(given "${1:-}" "$ALL") seeds=$(given "${2:-}" "")
  check_models "$models"
  if [ -n "$seeds" ]; then
    compare configs/padsd.yaml "$GRID/padsd" "$models" "$seeds"
  else
    five=$(pick "$models" "$FIVE") three=$(pick "$models" "$THREE")
    if [ -n "$five" ]; then compare configs/padsd.yaml "$GRID/padsd" "$five" 0,1,2,3,4; fi
    if [ -n "$three" ]; then compare configs/padsd.yaml "$GRID/padsd" "$three" 0,1,2; fi
  fi
  run "$LQER" report "$GRID/padsd"
}

padsd_regrouped() {
  # P-ADSD regrouped: the leakage-free split of `lqer data audit --regroup`, its test part
  # as test.
  local models seeds
  models=$(given "${1:-}" lqer,resnet18) seeds=$(given "${2:-}" 0,1,2)
  check_models "$models"
  compare configs/padsd.yaml "$GRID/padsd-regrouped" "$models" "$seeds" \
    --set data.split_file=results/padsd_regrouped_split.csv
  run "$LQER" report "$GRID/padsd-regrouped"
}

adsss() {
  # A-DSSS: each fold k is its own comparison in adsss/fold<k>, the fold's validation/ as
  # test and a 15% hold-out of its train/ for selection.
  local models seeds folds k
  models=$(given "${1:-}" "$ALL") seeds=$(given "${2:-}" 0,1,2) folds=$(given "${3:-}" 0,1,2,3,4)
  check_models "$models"
  compare configs/adsss.yaml "$GRID/adsss" "$models" "$seeds" --folds "$folds"
  for k in ${folds//,/ }; do run "$LQER" report "$GRID/adsss/fold$k"; done
}

collect() {
  run "$PYTHON" results/collect.py
}

piece=${1:-}
shift || true
case "$piece" in
  padsd) padsd "$@" ;;
  padsd-regrouped) padsd_regrouped "$@" ;;
  adsss) adsss "$@" ;;
  all) padsd; padsd_regrouped; adsss; collect ;;
  collect) collect ;;
  *) sed -n '/^#   bash results/,/^#        DRY_RUN/p' "$0" >&2; exit 2 ;;
esac
