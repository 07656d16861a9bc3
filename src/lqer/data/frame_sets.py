"""Annotated whole frames for a detector, decoded once and kept in memory at its input size.

A split is `<root>/<split>/images/` with its annotations (`<root>/<split>/annotations/<split>
.json` for COCO, ARCADE's layout; a folder of VOC or YOLO files beside `images/` otherwise).
Frames are resized to a square of `input_size` with the one resize (`lqer.data.transforms`),
and their boxes with them; detections are mapped back to frame pixels.

Choices use a hold-out of the training frames unless a validation split is named. Identical
frames (ARCADE repeats a few, one across its train and val) stay on one side: a training frame
identical to a frame of the validation or test split is left out of training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lqer.data.annotated import load_boxes
from lqer.data.annotations import Box, read_yolo
from lqer.data.frames import list_frames, read_frames
from lqer.data.patches import PatchSummary
from lqer.data.transforms import resize
from lqer.detection_config import FramesConfig
from lqer.errors import LqerError


@dataclass
class Frames:
    ids: list[str]
    images: torch.Tensor  # (N, S, S) uint8 at the detector's input size
    boxes: list[torch.Tensor]  # (k, 4) xyxy at the input size, per frame
    scales: torch.Tensor  # (N, 2): frame pixels per input pixel, x and y
    truth: dict[str, list[Box]]  # boxes (and polygons) in frame pixels, for the metrics
    digests: list[str]  # of the decoded pixels: identical frames share one

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, keep: list[int]) -> Frames:
        ids = [self.ids[i] for i in keep]
        return Frames(ids, self.images[keep], [self.boxes[i] for i in keep], self.scales[keep],
                      {k: self.truth[k] for k in ids}, [self.digests[i] for i in keep])  # fmt: skip


def split_paths(cfg: FramesConfig, split: str) -> tuple[Path, Path]:
    """The images folder and the annotations (file or folder) of a split."""
    folder = Path(cfg.root) / split
    annotations = folder / "annotations"
    if cfg.format == "coco":
        annotations = annotations / f"{split}.json"
    if not (folder / "images").is_dir():
        raise LqerError(f"data.root: {folder / 'images'} is not a folder of frames")
    return folder / "images", annotations


def load_split(cfg: FramesConfig, split: str) -> Frames:
    images_dir, annotations = split_paths(cfg, split)
    refs = list_frames(images_dir)
    found, _ = load_boxes(refs, annotations, cfg.format, PatchSummary())
    refs = [ref for ref in refs if ref.id in found]
    if cfg.limit is not None:
        refs = refs[: cfg.limit]
    ids, images, boxes, scales, truth, digests = [], [], [], [], {}, []
    for ref, frame in read_frames(refs):
        height, width = frame.shape
        frame_boxes = found[ref.id]
        if isinstance(frame_boxes, Path):  # YOLO: fractions of the frame's size
            frame_boxes = read_yolo(frame_boxes, width, height)
        size = cfg.input_size
        sx, sy = width / size, height / size
        ids.append(ref.id)
        images.append(resize(torch.from_numpy(np.ascontiguousarray(frame))[None, None], size)[0, 0])
        xyxy = [[b.xmin / sx, b.ymin / sy, b.xmax / sx, b.ymax / sy] for b in frame_boxes]
        boxes.append(torch.tensor(xyxy, dtype=torch.float32).reshape(-1, 4))
        scales.append((sx, sy))
        truth[ref.id] = list(frame_boxes)
        digests.append(hashlib.sha1(frame.tobytes()).hexdigest())
    if not ids:
        raise LqerError(f"no annotated frames in {images_dir}")
    return Frames(ids, torch.stack(images), boxes, torch.tensor(scales), truth, digests)


def load_frame_sets(cfg: FramesConfig, seed: int) -> dict[str, Frames]:
    """`train`, `val` (the named split, or a hold-out of train) and, if named, `test`."""
    sets = {"train": load_split(cfg, cfg.train_split)}
    if cfg.test_split:
        sets["test"] = load_split(cfg, cfg.test_split)
    if cfg.val_split:
        sets["val"] = load_split(cfg, cfg.val_split)
    else:
        sets["train"], sets["val"] = hold_out(sets["train"], cfg.hold_out, seed)
    elsewhere = {d for name in ("val", "test") if name in sets for d in sets[name].digests}
    keep = [i for i, d in enumerate(sets["train"].digests) if d not in elsewhere]
    sets["train"] = sets["train"].subset(keep)
    return sets


def hold_out(frames: Frames, fraction: float, seed: int) -> tuple[Frames, Frames]:
    """A seeded `fraction` of the frames for validation, identical frames on one side."""
    groups = sorted(set(frames.digests))
    rng = np.random.default_rng(seed)
    held = set(rng.choice(groups, size=max(1, round(fraction * len(groups))), replace=False))
    index = np.arange(len(frames))
    inside = np.array([d in held for d in frames.digests])
    return frames.subset(index[~inside].tolist()), frames.subset(index[inside].tolist())
