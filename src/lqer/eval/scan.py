"""Scan whole frames with a patch classifier: sliding windows, a heatmap, candidate boxes.

Geometry follows the training patches (`lqer.data.patches`): a positive patch is a square of
twice the stenosis box's longer side, centred on it. So a window of side s that scores high
says "a stenosis of about s/2 lies at my centre", and its candidate box is its central s/2
square. Windows of each size step by `stride` times their side; the heatmap at a pixel is the
mean score of the windows whose central square covers it. Candidates are the central squares,
thinned by non-maximum suppression (torchvision.ops.nms) across all sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torchvision.ops import nms

from lqer.data.annotations import Detection
from lqer.data.transforms import resize
from lqer.errors import LqerError
from lqer.eval.evaluate import predict_proba

# P-ADSD's patches are 32-166 px with median 52 (ADSD stenosis boxes of 15-30 px)
DEFAULT_SIZES = (48, 64)
DENSE_STRIDES = {0.5: 1, 0.25: 2}  # a dense scan's stride -> ResNet18 stages it dilates


@dataclass(frozen=True)
class ScanConfig:
    sizes: tuple[int, ...] = DEFAULT_SIZES  # window sides, in frame pixels
    stride: float = 0.25  # step between windows, as a fraction of their side
    nms_iou: float = 0.2  # candidates overlapping more than this keep only the best
    min_score: float = 0.05  # candidates below this are dropped (the FROC curve starts here)
    max_boxes: int = 50  # per frame, best first
    batch_size: int = 512
    # the backbone once over the frame per window side (`lqer.eval.dense`), not once a window
    dense: bool = False
    # a detector's test-time flip: None scans as the detector was shipped, True or False
    # overrides it (its stored thresholds were chosen one way; the threshold's source says so)
    flip: bool | None = None

    def __post_init__(self):
        if not self.sizes or min(self.sizes) < 8 or any(s % 2 for s in self.sizes):
            # even, as the training patches are, so that a box's window is 2 x its side
            raise LqerError(f"`sizes`: window sides must be even and >= 8 px, got {self.sizes}")
        if not 0 < self.stride <= 1:
            raise LqerError(f"`stride` must lie in (0, 1], got {self.stride}")
        if self.dense and self.stride not in DENSE_STRIDES:
            raise LqerError(
                f"`dense` steps windows by 0.5 or 0.25 of their side, not {self.stride}"
            )


@dataclass
class FrameScan:
    source: str  # the file's name, never a tag of its content
    frame: int  # 0-based frame index inside the file
    id: str
    heatmap: np.ndarray  # (H, W) float32, mean window score
    detections: list[Detection] = field(default_factory=list)  # best first

    def rows(self) -> list[dict]:
        return [{"source": self.source, "frame": self.frame, **asdict(d)} for d in self.detections]


def window_origins(length: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis: every `stride` px, plus one flush with the far edge."""
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def windows(height: int, width: int, size: int, stride: float) -> torch.Tensor:
    """(N, 2) top-left corners (x, y) of the windows of one size that tile the frame."""
    step = max(1, round(stride * size))
    ys, xs = window_origins(height, size, step), window_origins(width, size, step)
    grid = torch.cartesian_prod(torch.tensor(xs), torch.tensor(ys))
    return grid


def window_of(x: int, y: int, w: int) -> tuple[int, int, int]:
    """(x, y, side) of the window whose candidate box is the w-wide square at (x, y): its
    central half, for the even sides that ScanConfig allows."""
    side = 2 * w
    return x - side // 4, y - side // 4, side


def crops(frame: torch.Tensor, corners: torch.Tensor, size: int, out: int) -> torch.Tensor:
    """(N, 1, out, out) uint8 windows of `frame` (H, W), resized as training patches were."""
    patches = frame.unfold(0, size, 1).unfold(1, size, 1)  # (H-s+1, W-s+1, s, s), a view
    picked = patches[corners[:, 1], corners[:, 0]].unsqueeze(1)
    return resize(picked.contiguous(), out)


Scorer = Callable[[torch.Tensor], np.ndarray]  # uint8 windows (N, 1, S, S) -> probabilities


def torch_scorer(model: torch.nn.Module, image_size: int, device="cpu", batch_size=512) -> Scorer:
    return lambda windows: predict_proba(model, windows, image_size, device, batch_size)


WindowScores = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


def scan_frame(
    score: Scorer, frame: np.ndarray, image_size: int, cfg: ScanConfig = ScanConfig()
) -> tuple[np.ndarray, list[Detection]]:
    """Heatmap and candidates (best first) of one (H, W) uint8 frame; `score` is the model,
    in PyTorch (`torch_scorer`) or ONNX Runtime (`OnnxModel.predict`), on cropped windows."""

    def window_scores(image: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
        corners = windows(*image.shape, side, cfg.stride)
        probs = torch.cat([
            torch.from_numpy(score(crops(image, part, side, image_size)))
            for part in corners.split(cfg.batch_size * 4)
        ])  # fmt: skip
        return corners, probs

    return scan_with(window_scores, frame, cfg)


def scan_with(
    window_scores: WindowScores, frame: np.ndarray, cfg: ScanConfig
) -> tuple[np.ndarray, list[Detection]]:
    """Heatmap and candidates of one frame, given what scores its windows of one side:
    (N, 2) top-left corners and their N probabilities (cropped, or dense: `lqer.eval.dense`).
    The heatmap at a pixel is the mean score of the windows whose central half covers it."""
    height, width = frame.shape
    if min(height, width) < max(cfg.sizes):
        raise LqerError(
            f"a {width}x{height} frame is smaller than the {max(cfg.sizes)} px window (`sizes`)"
        )
    image = torch.from_numpy(np.ascontiguousarray(frame))
    heat = torch.zeros(height, width, dtype=torch.float64)
    count = torch.zeros(height, width, dtype=torch.float64)
    boxes, scores = [], []
    for side in cfg.sizes:
        corners, probs = window_scores(image, side)
        half, quarter = side // 2, side // 4
        for (x, y), p in zip(corners.tolist(), probs.tolist(), strict=True):
            heat[y + quarter : y + quarter + half, x + quarter : x + quarter + half] += p
            count[y + quarter : y + quarter + half, x + quarter : x + quarter + half] += 1
        centre = corners + quarter
        boxes.append(torch.cat([centre, centre + half], dim=1).double())
        scores.append(probs.double())
    heatmap = (heat / count.clamp(min=1)).float().numpy()
    return heatmap, suppress(torch.cat(boxes), torch.cat(scores), cfg)


def suppress(boxes: torch.Tensor, scores: torch.Tensor, cfg: ScanConfig) -> list[Detection]:
    """Non-maximum suppression of (N, 4) xyxy boxes, best first."""
    keep = scores >= cfg.min_score
    boxes, scores = boxes[keep], scores[keep]
    order = nms(boxes, scores, cfg.nms_iou)[: cfg.max_boxes]
    return [
        Detection(int(x0), int(y0), int(x1 - x0), int(y1 - y0), round(float(scores[i]), 6))
        for i in order.tolist()
        for x0, y0, x1, y1 in [boxes[i].tolist()]
    ]


# ----------------------------------------------------------------------------- files
