"""Scan whole frames with a patch classifier: sliding windows, a heatmap, candidate boxes.

Geometry follows the training patches (`lqer.data.patches`): a positive patch is a square of
twice the stenosis box's longer side, centred on it. So a window of side s that scores high
says "a stenosis of about s/2 lies at my centre", and its candidate box is its central s/2
square. Windows of each size step by `stride` times their side; the heatmap at a pixel is the
mean score of the windows whose central square covers it. Candidates are the central squares,
thinned by non-maximum suppression (torchvision.ops.nms) across all sizes.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.ops import nms
from tqdm import tqdm

from lqer.data.annotations import FORMATS, Detection, read_yolo
from lqer.data.frames import FrameRef, collect_frames, read_frames
from lqer.data.patches import PatchSummary, load_boxes
from lqer.data.transforms import resize
from lqer.device import pick_device
from lqer.errors import LqerError
from lqer.eval.detection import box_report, detection_summary, froc, plot_froc, score_at
from lqer.eval.evaluate import Decision, decision, predict_proba
from lqer.guarded_yaml import shown
from lqer.io import atomic_path, check_own_folder, owned_folder, write_text
from lqer.models.checkpoint import load_checkpoint
from lqer.models.detector import detect_frame, load_detector

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

    def __post_init__(self):
        if not self.sizes or min(self.sizes) < 8 or any(s % 2 for s in self.sizes):
            # even, as the training patches are, so that a box's window is 2 x its side
            raise LqerError(f"--sizes: window sides must be even and >= 8 px, got {self.sizes}")
        if not 0 < self.stride <= 1:
            raise LqerError(f"--stride must lie in (0, 1], got {self.stride}")
        if self.dense and self.stride not in DENSE_STRIDES:
            raise LqerError(
                f"--dense steps windows by 0.5 or 0.25 of their side, not {self.stride}"
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
            f"a {width}x{height} frame is smaller than the {max(cfg.sizes)} px window (--sizes)"
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

KIND = "scan"  # its output folder is marked as lqer scan's, which may write there again


def pick_frames(refs: list[FrameRef], frames: list[int] | None) -> list[FrameRef]:
    """The asked frames (1-based, as DICOM numbers them) of every file; None: all."""
    if frames is None:
        return refs
    picked = [ref for ref in refs if ref.index + 1 in frames]
    if not picked:
        raise LqerError(f"--frames: no file has frame {', '.join(map(str, frames))}")
    return picked


def overlay(frame: np.ndarray, heatmap: np.ndarray, boxes: dict[str, list]) -> Image.Image:
    """The frame in gray, the heatmap over it (transparent where the score is low), boxes."""
    from matplotlib import colormaps

    gray = np.repeat(frame[..., None].astype(np.float32) / 255, 3, axis=2)
    colour = colormaps["inferno"](heatmap)[..., :3]
    alpha = 0.6 * heatmap[..., None]
    image = Image.fromarray(np.round(255 * ((1 - alpha) * gray + alpha * colour)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for colour_name, rectangles in boxes.items():
        for x0, y0, x1, y1 in rectangles:
            draw.rectangle([x0, y0, x1, y1], outline=colour_name, width=2)
    return image


def save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def read_truth(annotations: Path, fmt: str, refs: list[FrameRef]) -> tuple[dict, list[str]]:
    """Labelled boxes per frame id (YOLO files still unread), and warnings."""
    summary = PatchSummary()
    truth, _ = load_boxes(refs, annotations, fmt, summary)
    return truth, summary.warnings


def scorer_for(checkpoint: str | Path | None, onnx: str | Path | None, device: str):
    """The scorer, input size and decision threshold of a checkpoint or an ONNX export."""
    if onnx is not None:
        from lqer.eval.export import OnnxModel, onnx_decision

        session = OnnxModel(onnx)
        return session.predict, session.image_size, onnx_decision(session, threshold=None)
    model, model_cfg, info = load_checkpoint(checkpoint)
    dev = pick_device(device)
    size = model_cfg.data.image_size
    return torch_scorer(model.to(dev).eval(), size, dev), size, decision(checkpoint, info, None)


FrameScanner = Callable[[np.ndarray], tuple[np.ndarray | None, list[Detection]]]


def frame_scanner(
    checkpoint: str | Path | None, onnx: str | Path | None, device: str, cfg: ScanConfig
) -> tuple[FrameScanner, Decision]:
    """What scans one frame, and its decision threshold: a whole-frame detector gives
    candidates (no heatmap); a patch classifier slides its windows (`scan_frame`)."""
    from lqer.eval.export_detector import OnnxDetector, is_onnx_detector

    if onnx is not None and is_onnx_detector(onnx):
        session = OnnxDetector(onnx)
        return (lambda frame: (None, session.detect_frame(frame))), session.decision
    found = load_detector(checkpoint) if onnx is None else None
    if found is not None:
        model, detector_cfg, info = found
        model.to(pick_device(device))

        def scan_one(frame: np.ndarray) -> tuple[None, list[Detection]]:
            return None, detect_frame(model, frame, detector_cfg.data.input_size)

        return scan_one, decision(checkpoint, info, None)
    if cfg.dense and onnx is None:
        from lqer.eval.dense import DenseScanner

        model, model_cfg, info = load_checkpoint(checkpoint)
        dev = pick_device(device)
        scanner = DenseScanner(model.to(dev), model_cfg.data.image_size, cfg,
                               DENSE_STRIDES[cfg.stride], dev)  # fmt: skip
        return scanner, decision(checkpoint, info, None)
    score, size, chosen = scorer_for(checkpoint, onnx, device)
    return (lambda frame: scan_frame(score, frame, size, cfg)), chosen


def scan_files(
    checkpoint: str | Path | None,
    paths: list[str | Path],
    out: str | Path,
    cfg: ScanConfig = ScanConfig(),
    frames: list[int] | None = None,
    annotations: str | Path | None = None,
    fmt: str = "voc",
    threshold: float | None = None,
    device: str = "auto",
    progress: bool = True,
    onnx: str | Path | None = None,
) -> dict:
    """Scan every frame of `paths` with a checkpoint or an ONNX export (`onnx`); write
    heatmaps, overlays, candidates and, with `annotations`, how the candidates score against
    the labelled boxes. Returns the summary."""
    if fmt not in FORMATS:  # before a model is loaded or a frame read
        raise LqerError(f"--format must be one of {', '.join(FORMATS)}, not {shown(fmt)}")
    inputs = [*paths, *(p for p in (checkpoint, onnx, annotations) if p is not None)]
    out = check_own_folder(out, KIND, "--out", inputs)
    scan_one, chosen = frame_scanner(checkpoint, onnx, device, cfg)
    if threshold is not None:
        chosen = Decision(threshold, "as asked")
    refs = pick_frames(collect_frames(paths), frames)
    if len({ref.id for ref in refs}) < len(refs):
        raise LqerError("two inputs give frames of the same id; scan them apart (--out)")
    truth, warnings = read_truth(Path(annotations), fmt, refs) if annotations else ({}, [])
    with owned_folder(out, KIND):  # only once the inputs are known to be good
        started = time.perf_counter()
        scans = write_scans(out, refs, scan_one, truth, chosen, progress)
        seconds = time.perf_counter() - started
        rows = [{**r, "above_threshold": r["score"] >= chosen.threshold}
                for s in scans.values() for r in s.rows()]  # fmt: skip
        write_rows(out / "boxes.csv", rows, ["source", "frame", "x", "y", "w", "h", "score",
                                             "above_threshold"])  # fmt: skip
        write_text(out / "boxes.json", json.dumps(rows, indent=1) + "\n")
        summary = {
            "model": str(onnx or checkpoint), "frames": len(scans), "seconds": round(seconds, 2),
            "frames_per_second": round(len(scans) / seconds, 3) if seconds else None,
            "threshold": chosen.threshold, "threshold_source": chosen.why,
            "candidates_above_threshold": sum(r["above_threshold"] for r in rows),
            "sizes": list(cfg.sizes), "stride": cfg.stride, "warnings": warnings,
        }  # fmt: skip
        truth = {k: v for k, v in truth.items() if k in scans}
        if truth:
            summary.update(score_files(out, scans, truth, chosen.threshold))
        write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def write_scans(
    out: Path,
    refs: list[FrameRef],
    scan_one: FrameScanner,
    truth: dict,
    chosen: Decision,
    progress: bool,
) -> dict[str, FrameScan]:
    """Scan each frame and write its heatmap (where the model gives one) and overlay; YOLO
    boxes in `truth` are read once the frame's size is known."""
    scans: dict[str, FrameScan] = {}
    for ref, image in tqdm(read_frames(refs), total=len(refs), disable=not progress):
        heatmap, found = scan_one(image)
        scan = FrameScan(ref.path.name, ref.index, ref.id, heatmap, found)
        if isinstance(truth.get(ref.id), Path):  # YOLO boxes are fractions of the frame size
            truth[ref.id] = read_yolo(truth[ref.id], image.shape[1], image.shape[0])
        if heatmap is None:
            heatmap = np.zeros(image.shape, np.float32)  # the overlay shows boxes alone
        else:
            save_png(Image.fromarray(np.round(heatmap * 255).astype(np.uint8)),
                     out / f"{ref.id}_heatmap.png")  # fmt: skip
        kept = [(d.x, d.y, d.x + d.w, d.y + d.h) for d in found if d.score >= chosen.threshold]
        labelled = [(b.xmin, b.ymin, b.xmax, b.ymax) for b in truth.get(ref.id, [])]
        save_png(overlay(image, heatmap, {"cyan": labelled, "lime": kept}),
                 out / f"{ref.id}_overlay.png")  # fmt: skip
        scan.heatmap = None  # written; keep memory flat over long cine runs
        scans[ref.id] = scan
    return scans


def score_files(out: Path, scans: dict, truth: dict, threshold: float) -> dict:
    """hits.csv, froc.csv and froc.png in `out`; every metric of `lqer.eval.detection`."""
    found = {key: scans[key].detections for key in truth}
    write_rows(out / "hits.csv", box_report(found, truth, threshold))
    curve = froc(found, truth)
    write_rows(out / "froc.csv", [{"threshold": s.threshold, "sensitivity": s.sensitivity,
                                   "fp_per_frame": s.fp_per_frame} for s in curve],
               ["threshold", "sensitivity", "fp_per_frame"])  # fmt: skip
    plot_froc(curve, score_at(found, truth, threshold), out / "froc.png")
    return detection_summary(found, truth, threshold)


def write_rows(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    columns = columns or (list(rows[0]) if rows else [])
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
