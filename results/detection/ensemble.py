"""Seed ensembles of the detector on ARCADE val/, from the stored candidates (no model runs):
each frame's candidates of several runs pooled by NMS at the flip's IoU, as `model.flip` pools
a frame and its mirror. A measurement, not a shipped model: two fp16 detectors are 76 MB, over
the 50 MB a shipped model may weigh.

    python results/detection/ensemble.py            # from the repository root
"""

from __future__ import annotations

import torch
from collect import ARCADE, HERE, load
from torchvision.ops import nms

from lqer.data.frame_sets import load_split
from lqer.detection_config import FramesConfig
from lqer.eval.detection import detection_summary
from lqer.models.detector import FLIP_IOU

ENSEMBLES = {
    "circuit head, seed 1 alone": ["fcos-lqer-lr1e-4-seed1"],
    "circuit head, seeds 0-2": [f"fcos-lqer-lr1e-4-seed{k}" for k in range(3)],
    "classical twin, seeds 0-2": [f"fcos-classical-lr1e-4-seed{k}" for k in range(3)],
    "circuit head, seeds 1 and 2": ["fcos-lqer-lr1e-4-seed1", "fcos-lqer-lr1e-4-seed2"],
}


def pooled(runs: list[str], truth: dict) -> dict:
    parts = [load(HERE / "candidates" / f"{run}.csv.gz", truth) for run in runs]
    found = {}
    for key in truth:
        ds = [d for part in parts for d in part[key]]
        boxes = torch.tensor([d.corners for d in ds], dtype=torch.float32)
        scores = torch.tensor([d.score for d in ds], dtype=torch.float32)
        found[key] = [ds[i] for i in nms(boxes.reshape(-1, 4), scores, FLIP_IOU).tolist()]
    return found


def main() -> None:
    val = load_split(FramesConfig(root=str(ARCADE), input_size=256), "val")
    for name, runs in ENSEMBLES.items():
        m = detection_summary(pooled(runs, val.truth), val.truth, 0.0)
        print(f"{name:>28}: FROC {m['froc']}, AP50 {m['ap50']:.3f}", flush=True)


if __name__ == "__main__":
    main()
