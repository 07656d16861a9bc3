#!/usr/bin/env bash
# Issue 24, part 1: the cross-site table. Train on one source (or two together) with the CPU
# recipe (configs/padsd-cpu.yaml: from scratch, 32 px, 10 epochs), then score every model on
# every source's held-aside part at the threshold its own training hold-out chose:
#   padsd   P-ADSD validation/
#   arcade  patches cut from ARCADE val/ frames (the P-ADSD recipe: positives at twice the
#           box, negatives beside it, and 4 negatives a frame from the whole frame)
#   adsss   every A-DSSS fold's validation/ (DSDD); a model trained on A-DSSS (source adsss:
#           fold 0's train/) only on fold 0's, as the other folds' validation/ overlaps it
# Run from the repository root with ../shared/datasets beside it; finished pieces are skipped.
#   bash results/cross_site/run.sh SOURCES MODELS SEEDS   e.g. bash results/cross_site/run.sh arcade lqer 0
#     SOURCES  padsd, arcade, adsss, padsd+arcade (comma-separated)   MODELS  lqer, resnet18
#              or shipped: lqer-padsd as it ships (P-ADSD, this recipe, seed 0), scored only
# A trial in a few minutes: WORK=/tmp/cs KEEP=/tmp/cs/keep EPOCHS=1 ARGS="--set data.limit=300"
# Another recipe: TAG names it, ARGS gives it, e.g. the transfer recipe of results/cross_site:
#   TAG=transfer ARGS="--set train.intensity=sites --set model.input_norm=image" bash ...
# Patches and runs go under $WORK (default runs/cross-site); each run's config.yaml,
# history.csv and scores (scores/<test set>.json) are copied to results/cross_site/runs/.
# ARCADE's train frame 218 is val frame 58 (../shared/datasets/README.md): its patches are
# left out of training.
set -euo pipefail
sources=${1:?SOURCES} models=${2:-lqer,resnet18} seeds=${3:-0,1,2}
LQER=${LQER:-lqer} WORK=${WORK:-runs/cross-site} SHARED=../shared/datasets
KEEP=${KEEP:-results/cross_site/runs} EPOCHS=${EPOCHS:-10}  # KEEP, EPOCHS: for a trial run
COMMON=(--set train.progress=false --set train.threads="${THREADS:-1}" --set train.epochs="$EPOCHS")

arcade_patches() {  # ARCADE frames -> $WORK/arcade/{train,val}/{positive,negative}
  for split in train val; do
    [ -f "$WORK/arcade/$split/manifest.csv" ] && continue
    $LQER data make-patches "$SHARED/ARCADE-stenosis/$split/images" --format coco \
      --annotations "$SHARED/ARCADE-stenosis/$split/annotations/$split.json" \
      --out "$WORK/arcade/$split" --frame-negatives 4 --seed 0
  done
  rm -f "$WORK"/arcade/train/{positive,negative}/218_*  # the frame that is also in val/
}

combined() {  # P-ADSD train/ and ARCADE train/ side by side, as linked folders
  for label in positive negative; do
    mkdir -p "$WORK/padsd+arcade/train/$label"
    ln -sfn "$(realpath "$SHARED/P-ADSD/train/$label")" "$WORK/padsd+arcade/train/$label/padsd"
    ln -sfn "$(realpath "$WORK/arcade/train/$label")" "$WORK/padsd+arcade/train/$label/arcade"
  done
}

root() {
  case $1 in
    padsd) echo "$SHARED/P-ADSD" ;;
    adsss) echo "$SHARED/A-DSSS/fold0" ;;
    arcade | padsd+arcade) echo "$WORK/$1" ;;
  esac
}

tests() {  # name=folder for every test set
  echo "padsd=$SHARED/P-ADSD/validation" "arcade=$WORK/arcade/val"
  for k in 0 1 2 3 4; do echo "adsss$k=$SHARED/A-DSSS/fold$k/validation"; done
}

arcade_patches
combined
for source in ${sources//,/ }; do
  for model in ${models//,/ }; do
    for seed in ${seeds//,/ }; do
      name=$source${TAG:+.$TAG}-$model-seed$seed out=$WORK/runs/$name keep=$KEEP/$name
      checkpoint=$out/best.pt
      if [ "$source" = shipped ]; then
        name=padsd.shipped-lqer-seed0 keep=$KEEP/padsd.shipped-lqer-seed0 checkpoint=lqer-padsd
        mkdir -p "$keep"
      elif [ ! -f "$out/best.pt" ] || [ ! -f "$out/history.csv" ] ||
        [ "$(tail -n +2 "$out/history.csv" | wc -l)" -lt "$EPOCHS" ]; then
        resume=(); [ -f "$out/last.pt" ] && resume=(--resume)
        $LQER train -c configs/padsd-cpu.yaml --data "$(root "$source")" --out "$out" \
          --seed "$seed" --set model.name="$model" --set data.test_split=null \
          "${resume[@]}" "${COMMON[@]}" ${ARGS:-}
      fi
      mkdir -p "$keep/scores"
      [ "$source" = shipped ] || cp "$out/config.yaml" "$out/history.csv" "$keep/"
      for test in $(tests); do
        [ -f "$keep/scores/${test%%=*}.json" ] && continue
        [[ $source == adsss* && ${test%%=*} == adsss[1-4] ]] && continue  # they saw fold 0's
        $LQER evaluate --checkpoint "$checkpoint" --data "${test#*=}" \
          --out "$WORK/scores-$name-${test%%=*}.json"
        mv "$WORK/scores-$name-${test%%=*}.json" "$keep/scores/${test%%=*}.json"
      done
    done
  done
done
