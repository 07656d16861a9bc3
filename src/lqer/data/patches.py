"""Cut stenosis patches out of annotated angiography frames, the way P-ADSD was built.

Geometry (the paper and LRSE-Net): a square centred on each stenosis box is a positive; the four
4-connected neighbouring squares of the same size are negatives, unless they overlap any stenosis
box of the frame. Squares under `min_size` pixels or crossing the image border are dropped, the
rest are resampled to `out_size`. The side is `scale` times the longer box side, rounded to an
even number: the papers do not give it, and 2 reproduces P-ADSD's sizes (all even, 32-166 px,
median 52, from ADSD boxes of typically 15-30 px).

The output tree `{positive,negative}/` and its `manifest.csv` are written into a temporary folder
beside the destination and renamed into place at the end, so an interrupted run leaves no
partial tree that looks complete.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lqer.data.annotations import (
    FORMATS,
    Box,
    check_boxes,
    find_annotation_files,
    read_coco,
    read_voc,
    read_yolo,
)
from lqer.data.frames import FrameRef, list_frames, read_frames
from lqer.errors import LqerError

# ADSD names frames like 14_002_5_0016; the fields look like patient, sequence, an unknown
# number and the frame index. Only the last is confirmed by the sample data (consecutive
# indices are consecutive frames of one sequence), so grouping by patient relies on this guess.
ADSD_PATTERN = r"(?P<patient>\d+)_(?P<sequence>\d+)_\d+_(?P<frame>\d+)"
NAME_FIELDS = ("patient", "sequence", "frame")
OFFSETS = {"centre": (0, 0), "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
CLASS_DIRS = ("negative", "positive")


@dataclass
class PatchConfig:
    scale: float = 2.0  # patch side / longer box side
    min_size: int = 32  # smaller squares are dropped
    out_size: int = 64  # resampled side; 0 keeps each patch at its native size
    pattern: str = ADSD_PATTERN  # regex with named groups, matched against the frame id
    labels: tuple[str, ...] | None = None  # box labels that mean stenosis; None: every box


@dataclass(frozen=True)
class PatchSpec:
    """A square `size` pixels wide with top-left corner (x, y), cut around box `box`."""

    box: int
    position: str
    x: int
    y: int
    size: int

    @property
    def label(self) -> int:
        return int(self.position == "centre")

    def overlaps(self, box: Box) -> bool:
        return (
            self.x < box.xmax
            and box.xmin < self.x + self.size
            and self.y < box.ymax
            and box.ymin < self.y + self.size
        )


@dataclass
class PatchSummary:
    frames: int = 0
    positive: int = 0
    negative: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> number of squares
    warnings: list[str] = field(default_factory=list)


def patch_side(box: Box, scale: float) -> int:
    return 2 * int(round(scale * max(box.width, box.height) / 2))


def plan_patches(
    boxes: list[Box], width: int, height: int, scale: float = 2.0, min_size: int = 32
) -> tuple[list[PatchSpec], Counter]:
    """The kept squares of one frame and the number dropped for each reason."""
    kept, dropped = [], Counter()
    for index, box in enumerate(boxes):
        size = patch_side(box, scale)
        if size < min_size:
            dropped["small"] += len(OFFSETS)
            continue
        cx, cy = box.centre
        x0, y0 = int(np.floor(cx - size / 2 + 0.5)), int(np.floor(cy - size / 2 + 0.5))
        for position, (dx, dy) in OFFSETS.items():
            spec = PatchSpec(index, position, x0 + dx * size, y0 + dy * size, size)
            if not (0 <= spec.x <= width - size and 0 <= spec.y <= height - size):
                dropped["border"] += 1
            elif spec.position != "centre" and any(spec.overlaps(b) for b in boxes):
                dropped["overlaps a stenosis box"] += 1
            else:
                kept.append(spec)
    return kept, dropped


def cut(image: np.ndarray, spec: PatchSpec, out_size: int) -> np.ndarray:
    patch = image[spec.y : spec.y + spec.size, spec.x : spec.x + spec.size]
    if out_size and spec.size != out_size:
        resized = Image.fromarray(patch).resize((out_size, out_size), Image.Resampling.BILINEAR)
        patch = np.asarray(resized)
    return patch


def parse_name(frame_id: str, pattern: str) -> dict[str, str]:
    """Named groups of `pattern` matched against the whole frame id; {} if it does not match."""
    match = re.fullmatch(pattern, frame_id)
    return match.groupdict(default="") if match else {}


def load_boxes(
    frames: list[FrameRef], annotations: str | Path, fmt: str, summary: PatchSummary
) -> dict[str, list[Box] | Path]:
    """Boxes per annotated frame id, or the YOLO file (read once the image size is known).

    Frames without annotations and annotations without frames are reported as warnings.
    """
    if fmt not in FORMATS:
        raise LqerError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "coco":
        annotations = Path(annotations)
        if not annotations.is_file():
            raise LqerError(f"COCO annotation file not found: {annotations}")
        found: dict[str, list[Box] | Path] = dict(read_coco(annotations))
    else:
        files = find_annotation_files(annotations, fmt)
        found = {k: (read_voc(p) if fmt == "voc" else p) for k, p in files.items()}
    ids = {ref.id for ref in frames}
    unannotated = sorted(ids - set(found))
    orphans = sorted(set(found) - ids)
    if unannotated:
        summary.warnings.append(
            f"{len(unannotated)} frame(s) have no annotation and are skipped, "
            f"e.g. {', '.join(unannotated[:3])}"
        )
    if orphans:
        summary.warnings.append(
            f"{len(orphans)} annotation(s) have no frame, e.g. {', '.join(orphans[:3])}"
        )
    if not ids & set(found):
        raise LqerError(f"no frame has an annotation in {annotations} (format {fmt})")
    return {k: v for k, v in found.items() if k in ids}


@contextlib.contextmanager
def atomic_dir(path: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary folder beside `path` and rename it into place if the block succeeds."""
    if path.exists() and not overwrite:
        raise LqerError(f"{path} exists; choose another output folder or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the output folder should not be
    try:
        yield tmp
        if path.exists():
            old = tmp.with_suffix(".old")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_patches(
    frames_dir: str | Path,
    annotations: str | Path,
    out_dir: str | Path,
    cfg: PatchConfig | None = None,
    fmt: str = "voc",
    class_names: list[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> PatchSummary:
    """Write `out_dir/{positive,negative}/*.png` and `out_dir/manifest.csv`."""
    cfg = cfg or PatchConfig()
    out_dir = Path(out_dir)
    try:
        re.compile(cfg.pattern)
    except re.error as e:
        raise LqerError(f"--pattern is not a valid regular expression ({e})") from None
    summary = PatchSummary()
    frames = list_frames(frames_dir)
    if not frames:
        raise LqerError(f"no frames (images or DICOM) in {frames_dir}")
    annotated = load_boxes(frames, annotations, fmt, summary)
    frames = [ref for ref in frames if ref.id in annotated]
    extra = [g for g in re.compile(cfg.pattern).groupindex if g not in NAME_FIELDS]
    columns = ["path", "label", "frame_id", "source", *NAME_FIELDS, *extra, "box"]
    columns += ["box_xmin", "box_ymin", "box_xmax", "box_ymax", "position", "x", "y", "size"]
    unparsed = []

    with atomic_dir(out_dir, overwrite) as tmp:
        for name in CLASS_DIRS:
            (tmp / name).mkdir()
        rows = []
        for ref, image in tqdm(read_frames(frames), total=len(frames), disable=not progress):
            height, width = image.shape
            boxes = annotated[ref.id]
            if isinstance(boxes, Path):
                boxes = read_yolo(boxes, width, height, class_names)
            if cfg.labels is not None:
                boxes = [b for b in boxes if b.label in cfg.labels]
            boxes = check_boxes(ref.id, boxes, width, height, summary.warnings)
            specs, dropped = plan_patches(boxes, width, height, cfg.scale, cfg.min_size)
            summary.frames += 1
            summary.dropped.update(dropped)
            fields = parse_name(ref.id, cfg.pattern)
            if not fields:
                unparsed.append(ref.id)
            for spec in specs:
                name = f"{CLASS_DIRS[spec.label]}/{ref.id}_b{spec.box}_{spec.position}.png"
                Image.fromarray(cut(image, spec, cfg.out_size)).save(tmp / name)
                box = boxes[spec.box]
                rows.append(
                    {
                        "path": name, "label": spec.label, "frame_id": ref.id,
                        "source": str(ref.path.resolve()), **fields, "box": spec.box,
                        "box_xmin": box.xmin, "box_ymin": box.ymin,
                        "box_xmax": box.xmax, "box_ymax": box.ymax,
                        "position": spec.position, "x": spec.x, "y": spec.y, "size": spec.size,
                    }
                )  # fmt: skip
                summary.positive += spec.label
                summary.negative += 1 - spec.label
        if not rows:
            raise LqerError(f"no patch survived (dropped: {dict(summary.dropped)})")
        if unparsed:
            summary.warnings.append(
                f"{len(unparsed)} frame id(s) do not match --pattern {cfg.pattern!r}, "
                f"e.g. {', '.join(unparsed[:3])}; their patient/sequence/frame are empty"
            )
        with (tmp / "manifest.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        if summary.warnings:
            (tmp / "warnings.txt").write_text("\n".join(summary.warnings) + "\n")
    return summary
