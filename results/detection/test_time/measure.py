"""Test-time changes for a trained detector, measured on the hold-out of ARCADE train/ that
chose its epoch (never on val/): a larger input than it was trained at, and the flip.

    python results/detection/test_time/measure.py [CHECKPOINT] [SIZE ...]

Prints the sensitivity at 0.25-8 false positives per frame and AP50 for the plain scan at each
SIZE (default 256 320 384), then at the trained size for the flip pooled by NMS (what
`model.flip` does) and for the flip averaging the two passes' scores of matching boxes.
"""

from __future__ import annotations

import sys

import torch
from torchvision.ops import box_iou

from lqer.data.annotations import Detection
from lqer.data.frame_sets import load_frame_sets
from lqer.eval.detection import detection_summary
from lqer.models.detector import detect, load_detector


def hold_out(cfg, size: int):
    data = cfg.data.replace(input_size=size, test_split=None)
    return load_frame_sets(data, cfg.train.seed)["val"]  # the training run's own hold-out


def report(name: str, found: list, frames, min_score: float) -> None:
    m = detection_summary(dict(zip(frames.ids, found, strict=True)), frames.truth, min_score)
    print(f"{name:>22}: FROC {m['froc']}, AP50 {m['ap50']:.3f}", flush=True)


def averaged(plain: list[Detection], mirrored: list[Detection]) -> list[Detection]:
    """Each plain candidate scored by the mean of its score and its best mirrored match's."""
    if not plain:
        return []
    if not mirrored:
        return [Detection(d.x, d.y, d.w, d.h, d.score / 2) for d in plain]

    def boxes(ds):
        return torch.tensor([d.corners for d in ds], dtype=torch.float32)

    best, index = box_iou(boxes(plain), boxes(mirrored)).max(1)
    out = [Detection(d.x, d.y, d.w, d.h,
                     (d.score + (mirrored[int(j)].score if iou >= 0.3 else 0.0)) / 2)
           for d, iou, j in zip(plain, best, index, strict=True)]  # fmt: skip
    return sorted(out, key=lambda d: -d.score)


def main(checkpoint: str = "lqer-arcade", *sizes: str) -> None:
    torch.set_num_threads(1)
    model, cfg, _ = load_detector(checkpoint)
    trained = cfg.data.input_size
    held = {}  # frames per input size, each loaded once
    for size in map(int, sizes or (256, 320, 384)):
        frames = held[size] = hold_out(cfg, size)
        model.transform.min_size, model.transform.max_size = (size,), size
        report(f"plain at {size} px", detect(model, frames.images, frames.scales), frames,
               cfg.model.min_score)  # fmt: skip
    model.transform.min_size, model.transform.max_size = (trained,), trained
    frames = held[trained] if trained in held else hold_out(cfg, trained)
    pooled = detect(model, frames.images, frames.scales, flip=True)
    report("flip, pooled by NMS", pooled, frames, cfg.model.min_score)
    plain = detect(model, frames.images, frames.scales)
    width = frames.scales[:, 0] * trained
    mirrored = [[Detection(round(float(w) - d.x - d.w), d.y, d.w, d.h, d.score) for d in found]
                for w, found in zip(width, detect(model, frames.images.flip(-1), frames.scales),
                                    strict=True)]  # fmt: skip
    report("flip, scores averaged", [averaged(p, m) for p, m in zip(plain, mirrored, strict=True)],
           frames, cfg.model.min_score)  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:])
