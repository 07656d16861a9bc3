"""Whole-frame detection metrics: FROC, COCO AP and ARCADE's challenge score, one definition each.

Candidates are `lqer.data.annotations.Detection`s (a box in pixels, top-left corner and size,
with a score; anything with `x, y, w, h, score` will do, and an optional `polygon` of rings, as
on `Box`, stands in for the box in the challenge score). Truth is a list of `Box` per annotated
frame id; a frame with an empty list has no stenosis and still counts (its candidates are
false positives). Candidates of frames without truth are ignored.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import shapely
import torch
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from torchvision.ops import box_iou

from lqer.data.annotations import Box, Detection
from lqer.io import atomic_path

FP_RATES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # false positives per frame, the FROC table
SIZE_LIMIT = 3.0  # a candidate longer than this many times the stenosis box does not find it


Candidates = Mapping[str, Sequence[Detection]]  # per frame id
Truth = Mapping[str, Sequence[Box]]  # per annotated frame id


# ----------------------------------------------------------------------------- FROC


def hits(candidate: Detection, box: Box) -> bool:
    """A candidate finds a stenosis when either's centre lies inside the other (edges count)
    and the candidate's longer side is at most SIZE_LIMIT (3) times the stenosis box's longer
    side: without the limit, one frame-sized candidate would find every stenosis."""
    if max(candidate.w, candidate.h) > SIZE_LIMIT * max(box.width, box.height):
        return False
    cx, cy = candidate.x + candidate.w / 2, candidate.y + candidate.h / 2
    bx, by = box.centre
    inside = box.xmin <= cx <= box.xmax and box.ymin <= cy <= box.ymax
    return inside or (candidate.x <= bx <= candidate.x + candidate.w and
                      candidate.y <= by <= candidate.y + candidate.h)  # fmt: skip


@dataclass(frozen=True)
class Score:
    """An operating point: the candidates scoring at least `threshold`."""

    threshold: float
    boxes: int  # stenoses in the annotated frames
    found: int  # stenoses found by at least one candidate (each counts once)
    false_positives: int  # candidates that find no stenosis
    frames: int  # annotated frames, with or without stenosis

    @property
    def sensitivity(self) -> float:
        return self.found / self.boxes if self.boxes else float("nan")

    @property
    def fp_per_frame(self) -> float:
        return self.false_positives / self.frames if self.frames else float("nan")


def score_at(detections: Candidates, truth: Truth, threshold: float) -> Score:
    """The operating point at `threshold`: stenoses found and false positives among the
    candidates scoring at least `threshold`, by the rule of `hits`."""
    found = false = boxes = 0
    for key, boxes_here in truth.items():
        kept = [d for d in detections.get(key, ()) if d.score >= threshold]
        found += sum(any(hits(d, b) for d in kept) for b in boxes_here)
        false += sum(not any(hits(d, b) for b in boxes_here) for d in kept)
        boxes += len(boxes_here)
    return Score(threshold, boxes, found, false, len(truth))


def froc(detections: Candidates, truth: Truth) -> list[Score]:
    """The FROC curve: `score_at` each distinct candidate score, highest first (so false
    positives and sensitivity never fall along it). One sweep over the sorted candidates."""
    events = []  # (score, the stenoses it finds as (frame, index))
    for key, boxes_here in truth.items():
        for d in detections.get(key, ()):
            events.append((d.score, [(key, i) for i, b in enumerate(boxes_here) if hits(d, b)]))
    events.sort(key=lambda event: -event[0])
    total = sum(len(b) for b in truth.values())
    found: set[tuple[str, int]] = set()
    false = 0
    curve = []
    for k, (score, finds) in enumerate(events):
        found.update(finds)
        false += not finds
        if k + 1 == len(events) or events[k + 1][0] != score:  # ties enter together
            curve.append(Score(score, total, len(found), false, len(truth)))
    return curve


def sensitivity_at(curve: Sequence[Score], rates: Iterable[float] = FP_RATES) -> dict:
    """The best sensitivity reachable with at most `rate` false positives per frame, for each
    rate: 0 where even the best candidates make more (a threshold above all of them finds
    nothing and costs nothing); NaN without stenoses."""
    if curve and not curve[0].boxes:
        return {rate: float("nan") for rate in rates}
    return {
        rate: max((s.sensitivity for s in curve if s.fp_per_frame <= rate), default=0.0)
        for rate in rates
    }


def operating_threshold(curve: Sequence[Score], fp_rate: float | None = None,
                        sensitivity: float | None = None) -> float | None:  # fmt: skip
    """The score to use as threshold: the lowest whose point makes at most `fp_rate` false
    positives per frame, or the highest whose point reaches `sensitivity`; None where no point
    of the curve does."""
    if fp_rate is not None:
        within = [s for s in curve if s.fp_per_frame <= fp_rate]
        return within[-1].threshold if within else None
    reaching = [s for s in curve if s.sensitivity >= sensitivity]
    return reaching[0].threshold if reaching else None


def box_report(detections: Candidates, truth: Truth, threshold: float) -> list[dict]:
    """One row per stenosis: found or not at `threshold` (`hits`), the best score and the best
    box IoU among the candidates that find it at any score."""
    rows = []
    for key, boxes_here in sorted(truth.items()):
        for box in boxes_here:
            finding = [d for d in detections.get(key, ()) if hits(d, box)]
            best = max((d.score for d in finding), default=None)
            iou = 0.0
            if finding:
                ours = torch.tensor([d.corners for d in finding])
                theirs = torch.tensor([[box.xmin, box.ymin, box.xmax, box.ymax]])
                iou = float(box_iou(ours.double(), theirs.double()).max())
            rows.append({
                "frame_id": key, "xmin": box.xmin, "ymin": box.ymin, "xmax": box.xmax,
                "ymax": box.ymax, "hit": best is not None and best >= threshold,
                "best_score": "" if best is None else round(best, 6), "best_iou": round(iou, 3),
            })  # fmt: skip
    return rows


# ----------------------------------------------------------------------------- COCO AP


def coco_ap(detections: Candidates, truth: Truth) -> tuple[float, float]:
    """(AP at IoU 0.5, AP averaged over IoU 0.50:0.05:0.95) of the candidate boxes, by
    pycocotools' COCOeval (iouType bbox, all areas, at most max(100, most candidates of a
    frame) per frame), every stenosis one category. Frames without stenosis count: their
    candidates are false positives. NaN without stenoses (undefined), 0 without candidates."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = {key: n for n, key in enumerate(sorted(truth), start=1)}
    boxes = [(ids[key], b) for key in ids for b in truth[key]]
    # annotation ids from 1: COCOeval reads a matched ground-truth id of 0 as "unmatched"
    gts = [{"id": n, "image_id": image, "category_id": 1, "iscrowd": 0,
            "bbox": [b.xmin, b.ymin, b.width, b.height], "area": b.width * b.height}
           for n, (image, b) in enumerate(boxes, start=1)]  # fmt: skip
    dets = [{"image_id": ids[key], "category_id": 1, "bbox": [d.x, d.y, d.w, d.h],
             "score": float(d.score)} for key in ids for d in detections.get(key, ())]  # fmt: skip
    if not gts:
        return float("nan"), float("nan")
    if not dets:  # loadRes fails on an empty list; nothing found is AP 0
        return 0.0, 0.0
    most = max(len(detections.get(key, ())) for key in ids)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco = COCO()
        coco.dataset = {"images": [{"id": n} for n in ids.values()], "annotations": gts,
                        "categories": [{"id": 1, "name": "stenosis"}]}  # fmt: skip
        coco.createIndex()
        evaluation = COCOeval(coco, coco.loadRes(dets), "bbox")
        evaluation.params.maxDets = [1, 10, max(100, most)]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    ap, ap50 = (float(v) if v >= 0 else float("nan") for v in evaluation.stats[:2])
    return ap50, ap


# ----------------------------------------------------------------------------- ARCADE


def region(item: Box | Detection) -> BaseGeometry:
    """The area a stenosis or a candidate claims: the union of its polygon's rings (each made
    valid: hand-drawn outlines cross themselves), or its box where it has no polygon or the
    polygon has no area."""
    rings = getattr(item, "polygon", None)
    if rings:
        shape = shapely.union_all([shapely.make_valid(Polygon(ring)) for ring in rings])
        if shape.area > 0:
            return shape
    if isinstance(item, Box):
        return shapely.box(item.xmin, item.ymin, item.xmax, item.ymax)
    return shapely.box(item.x, item.y, item.x + item.w, item.y + item.h)


def dice(a: BaseGeometry, b: BaseGeometry) -> float:
    """Area-overlap F1 of two regions: 2|A∩B| / (|A| + |B|); 0 for two empty regions."""
    total = a.area + b.area
    return 2 * a.intersection(b).area / total if total > 0 else 0.0


def frame_challenge_score(predicted: Sequence[BaseGeometry], annotated: Sequence[BaseGeometry]):
    """One frame's ARCADE score: the mean of each predicted region's best Dice with an
    annotated region, together with a 0 for each annotated region no prediction overlaps.
    Nothing annotated and nothing predicted scores 1 (nothing to find, nothing claimed);
    predictions on a frame without stenosis score 0, as does a missed frame."""
    overlap = [[dice(p, a) for a in annotated] for p in predicted]
    values = [max(row, default=0.0) for row in overlap]
    values += [0.0 for j in range(len(annotated)) if not any(row[j] > 0 for row in overlap)]
    return sum(values) / len(values) if values else 1.0


def challenge_score(detections: Candidates, truth: Truth, threshold: float) -> float:
    """ARCADE's challenge score: `frame_challenge_score` averaged over the annotated frames,
    counting only candidates scoring at least `threshold`; NaN without frames."""
    scores = [
        frame_challenge_score(
            [region(d) for d in detections.get(key, ()) if d.score >= threshold],
            [region(b) for b in boxes],
        )
        for key, boxes in truth.items()
    ]
    return sum(scores) / len(scores) if scores else float("nan")


# ----------------------------------------------------------------------------- summary


def detection_summary(detections: Candidates, truth: Truth, threshold: float) -> dict:
    """Every metric above in one JSON-ready dict (NaN as None): the operating point at
    `threshold`, the FROC sensitivity at each of FP_RATES and their mean, AP50, AP and the
    challenge score at `threshold`."""
    at = score_at(detections, truth, threshold)
    table = sensitivity_at(froc(detections, truth))
    if not at.boxes:  # an empty curve cannot tell sensitivity_at that there is nothing to find
        table = dict.fromkeys(table, float("nan"))
    ap50, ap = coco_ap(detections, truth)
    summary = {
        "boxes": at.boxes, "found": at.found, "missed": at.boxes - at.found,
        "sensitivity": at.sensitivity, "false_positives": at.false_positives,
        "fp_per_frame": at.fp_per_frame,
        "froc": {f"{rate:g}": s for rate, s in table.items()},
        "froc_mean": sum(table.values()) / len(table), "ap50": ap50, "ap": ap,
        "challenge_score": challenge_score(detections, truth, threshold),
    }  # fmt: skip
    return _json_ready(summary)


def _json_ready(value):
    """NaN as None (JSON has no NaN), floats to 6 places."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    return value


def plot_froc(curve: Sequence[Score], at: Score, path: Path, rates=FP_RATES) -> None:
    """Sensitivity against false positives per frame on a log axis, the rates of the FROC
    table marked and the operating point labelled. Points at 0 FP/frame sit on the left edge."""
    from matplotlib.figure import Figure

    positive = [s.fp_per_frame for s in (*curve, at) if s.fp_per_frame > 0]
    left = min([min(rates) / 2, *(v / 1.5 for v in positive)])
    right = max([max(rates) * 1.5, *(v * 1.2 for v in positive)])
    fig = Figure(figsize=(5, 3.8), layout="constrained")
    ax = fig.subplots()
    xs = [left] + [max(s.fp_per_frame, left) for s in curve]
    ax.step(xs, [0.0] + [s.sensitivity for s in curve], where="post", label="FROC")
    table = sensitivity_at(curve, rates)
    ax.plot(list(table), list(table.values()), "s", ms=4, color="C0")
    for rate in rates:
        ax.axvline(rate, color="0.85", lw=0.8, zorder=0)
    ax.plot([max(at.fp_per_frame, left)], [at.sensitivity], "o", color="C3",
            label=f"threshold {at.threshold:.3g}: {at.sensitivity:.2f} at "
                  f"{at.fp_per_frame:.2f} FP/frame")  # fmt: skip
    ax.set_xscale("log")
    ticks = [*rates, *(2.0**k for k in range(4, 12) if 2**k < right)]  # 16, 32, ... past 8
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xticks([], minor=True)
    ax.set(xlabel="false positives per frame", ylabel="sensitivity", xlim=(left, right),
           ylim=(0, 1.02), title="FROC")  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
