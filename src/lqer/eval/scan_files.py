"""`lqer scan`: scan every frame of some files and write heatmaps, overlays, candidates and,
against annotations, every metric of `lqer.eval.detection`, with `froc.png`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lqer.data.annotated import load_boxes
from lqer.data.annotations import FORMATS, read_yolo
from lqer.data.frames import FrameRef, collect_frames, read_frames
from lqer.data.patches import PatchSummary
from lqer.errors import LqerError
from lqer.eval.detection import box_report, detection_summary, froc, plot_froc, score_at
from lqer.eval.evaluate import Decision
from lqer.eval.overlay import overlay
from lqer.eval.scan import FrameScan, ScanConfig
from lqer.eval.scanners import FrameScanner, frame_scanner
from lqer.guarded_yaml import shown
from lqer.io import atomic_path, check_own_folder, owned_folder, write_csv, write_text

KIND = "scan"  # its output folder is marked as lqer scan's, which may write there again


def pick_frames(refs: list[FrameRef], frames: list[int] | None) -> list[FrameRef]:
    """The asked frames (1-based, as DICOM numbers them) of every file; None: all."""
    if frames is None:
        return refs
    picked = [ref for ref in refs if ref.index + 1 in frames]
    if not picked:
        raise LqerError(f"`frames`: no file has frame {', '.join(map(str, frames))}")
    return picked


def check_unique_ids(refs: list[FrameRef]) -> None:
    """Outputs are named by frame id, and annotations matched by it: two frames of one id
    would overwrite each other's overlay."""
    seen: dict[str, Path] = {}
    for ref in refs:
        if ref.id in seen and seen[ref.id] != ref.path:
            raise LqerError(f"two frames share the id {ref.id}: {seen[ref.id]}, {ref.path}; "
                            "scan them apart (another `out`)")  # fmt: skip
        seen[ref.id] = ref.path


def save_png(image: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def read_truth(annotations: Path, fmt: str, refs: list[FrameRef]) -> tuple[dict, list[str]]:
    """Labelled boxes per frame id (YOLO files still unread), and warnings."""
    summary = PatchSummary()
    truth, _ = load_boxes(refs, annotations, fmt, summary)
    return truth, summary.warnings


def scan_files(
    checkpoint: str | Path | None,
    paths: list[str | Path],
    out: str | Path,
    cfg: ScanConfig | None = None,
    frames: list[int] | None = None,
    annotations: str | Path | None = None,
    fmt: str = "voc",
    threshold: float | None = None,
    device: str = "auto",
    progress: bool = True,
    onnx: str | Path | None = None,
    skip_bad: bool = False,
) -> dict:
    """Scan every frame of `paths` with a checkpoint or an ONNX export (`onnx`); write
    heatmaps, overlays, candidates and, with `annotations`, how the candidates score against
    the labelled boxes. With `skip_bad`, a file that cannot be read is listed in the summary's
    `skipped` and the scan goes on. Returns the summary."""
    cfg = cfg or ScanConfig()
    if fmt not in FORMATS:  # before a model is loaded or a frame read
        raise LqerError(f"`fmt` must be one of {', '.join(FORMATS)}, not {shown(fmt)}")
    inputs = [*paths, *(p for p in (checkpoint, onnx, annotations) if p is not None)]
    out = check_own_folder(out, KIND, "`out`", inputs)
    scan_one, chosen, flip = frame_scanner(checkpoint, onnx, device, cfg)
    if threshold is not None:
        chosen = Decision(threshold, "as asked")
    refs = pick_frames(collect_frames(paths), frames)
    check_unique_ids(refs)
    truth, warnings = read_truth(Path(annotations), fmt, refs) if annotations else ({}, [])
    with owned_folder(out, KIND):  # only once the inputs are known to be good
        started = time.perf_counter()
        skipped: list[tuple[str, str]] | None = [] if skip_bad else None
        scans = write_scans(out, refs, scan_one, truth, chosen, progress, skipped)
        seconds = time.perf_counter() - started
        rows = [{**r, "above_threshold": r["score"] >= chosen.threshold}
                for s in scans.values() for r in s.rows()]  # fmt: skip
        write_csv(out / "boxes.csv", rows, ["source", "frame", "x", "y", "w", "h", "score",
                                             "above_threshold"])  # fmt: skip
        write_text(out / "boxes.json", json.dumps(rows, indent=1) + "\n")
        summary = {
            "model": str(onnx or checkpoint), "frames": len(scans), "seconds": round(seconds, 2),
            "frames_per_second": round(len(scans) / seconds, 3) if seconds else None,
            "threshold": chosen.threshold, "threshold_source": chosen.why,
            "candidates_above_threshold": sum(r["above_threshold"] for r in rows),
            "sizes": list(cfg.sizes), "stride": cfg.stride, "flip": flip, "warnings": warnings,
            "skipped": [{"path": path, "reason": why} for path, why in skipped or []],
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
    skipped: list[tuple[str, str]] | None = None,
) -> dict[str, FrameScan]:
    """Scan each frame and write its heatmap (where the model gives one) and overlay; YOLO
    boxes in `truth` are read once the frame's size is known."""
    scans: dict[str, FrameScan] = {}
    frames = read_frames(refs, skipped=skipped)
    for ref, image in tqdm(frames, total=len(refs), disable=not progress, desc="scan"):
        heatmap, found = scan_one(image)
        scan = FrameScan(ref.path.name, ref.index, ref.id, heatmap, found)
        if isinstance(truth.get(ref.id), Path):  # YOLO boxes are fractions of the frame size
            truth[ref.id] = read_yolo(truth[ref.id], image.shape[1], image.shape[0])
        if heatmap is not None:
            save_png(Image.fromarray(np.round(heatmap * 255).astype(np.uint8)),
                     out / f"{ref.id}_heatmap.png")  # fmt: skip
        kept = [(d.corners, d.score) for d in found
                if d.score >= chosen.threshold]  # fmt: skip
        labelled = [(b.xmin, b.ymin, b.xmax, b.ymax) for b in truth.get(ref.id, [])]
        title = f"{ref.path.name}" + (f" frame {ref.index + 1}" if ref.id != ref.path.stem else "")
        title += f": {len(kept)} candidate(s) at threshold {chosen.threshold:.3g}"
        save_png(overlay(image, heatmap, kept, labelled, title), out / f"{ref.id}_overlay.png")
        scan.heatmap = None  # written; keep memory flat over long cine runs
        scans[ref.id] = scan
    return scans


def score_files(out: Path, scans: dict, truth: dict, threshold: float) -> dict:
    """hits.csv, froc.csv and froc.png in `out`; every metric of `lqer.eval.detection`."""
    found = {key: scans[key].detections for key in truth}
    write_csv(out / "hits.csv", box_report(found, truth, threshold))
    curve = froc(found, truth)
    write_csv(out / "froc.csv", [{"threshold": s.threshold, "sensitivity": s.sensitivity,
                                   "fp_per_frame": s.fp_per_frame} for s in curve],
               ["threshold", "sensitivity", "fp_per_frame"])  # fmt: skip
    plot_froc(curve, score_at(found, truth, threshold), out / "froc.png")
    return detection_summary(found, truth, threshold)
