#!/usr/bin/env bash
# Issue 13: the shipped model scans the 6 ADSD-sample frames (512x512, 7 labelled stenoses)
# with the default windows (48 and 64 px, stride 0.25) and is scored against the VOC boxes.
# Run from the repository root; writes runs/scan-adsd-sample/ and copies the small files here.
set -euo pipefail
out=runs/scan-adsd-sample
lqer scan ../shared/datasets/ADSD-sample/images --checkpoint lqer-padsd \
  --annotations ../shared/datasets/ADSD-sample/annotations --out "$out" --device cpu
cp "$out"/{summary.json,hits.csv,froc.csv,froc.png,boxes.csv} "$out"/14_002_5_0019_overlay.png \
  results/scan/
