"""Hard-negative mining: scan training frames with a model, keep its strongest false candidates,
and train again with them as negatives (`lqer data make-patches --mine`).

What becomes a negative is the window behind a candidate (`scan.window_of`), the square the
model scored, in frame pixels, and only a window that overlaps no stenosis box, as make-patches'
negatives never hold part of one. Such a candidate also finds no stenosis by the scoring rule
(either's centre inside the other): the candidate is the window's central half, so its centre
lies in no box and no box's centre lies in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lqer.data.annotations import Box, Detection
from lqer.data.negatives import Square, square_overlaps
from lqer.errors import LqerError
from lqer.eval.scan import ScanConfig, window_of
from lqer.eval.scanners import FrameScanner, frame_scanner

MAX_PER_FRAME = 1000


def false_windows(
    detections: list[Detection], boxes: list[Box], per_frame: int, width: int, height: int
) -> list[Square]:
    """The windows of the best `per_frame` candidates (`detections` best first) whose windows
    are clear of every box, as (x, y, side) inside the frame."""
    found: list[Square] = []
    for detection in detections:
        if len(found) == per_frame:
            break
        x, y, side = window_of(detection.x, detection.y, detection.w)
        inside = x >= 0 and y >= 0 and x + side <= width and y + side <= height
        if inside and not any(square_overlaps(x, y, side, box) for box in boxes):
            found.append((x, y, side))
    return found


def mine_frames(
    scan_one: FrameScanner,
    frames: Iterable[tuple[str, np.ndarray, list[Box]]],
    per_frame: int,
    progress: bool = False,
    total: int | None = None,
) -> dict[str, list[Square]]:
    """Per frame id, the windows of its `per_frame` strongest false candidates; `frames`
    yields (id, (H, W) uint8 frame, its stenosis boxes), `scan_one` is what `lqer scan` runs
    on a frame (`lqer.eval.scanners.frame_scanner`: windows cropped or dense)."""
    if not 1 <= per_frame <= MAX_PER_FRAME:
        raise LqerError(f"`mine_per_frame` must be 1 to {MAX_PER_FRAME}, not {per_frame}")
    mined = {}
    for frame_id, image, boxes in tqdm(frames, total=total, disable=not progress):
        _, detections = scan_one(image)
        mined[frame_id] = false_windows(detections, boxes, per_frame, *image.shape[::-1])
    return mined


def mine(
    checkpoint: str | Path,
    frames: Iterable[tuple[str, np.ndarray, list[Box]]],
    per_frame: int,
    cfg: ScanConfig | None = None,
    device: str = "auto",
    progress: bool = False,
    total: int | None = None,
) -> dict[str, list[Square]]:
    """`mine_frames` with a checkpoint or the name of shipped weights (`lqer models`)."""
    if not 1 <= per_frame <= MAX_PER_FRAME:  # before the model is loaded
        raise LqerError(f"`mine_per_frame` must be 1 to {MAX_PER_FRAME}, not {per_frame}")
    scan_one, _, _ = frame_scanner(checkpoint, None, device, cfg or ScanConfig())
    return mine_frames(scan_one, frames, per_frame, progress, total)
