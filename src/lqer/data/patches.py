"""Cut stenosis patches out of annotated angiography frames, the way P-ADSD was built.

Geometry (the paper and LRSE-Net): a square centred on each stenosis box is a positive; the four
4-connected neighbouring squares of the same size are negatives, unless they overlap any stenosis
box of the frame. Squares under `min_size` pixels or crossing the image border are dropped, the
rest are resampled to `out_size`. The side is `scale` times the longer box side, rounded to an
even number: the papers do not give it, and 2 reproduces P-ADSD's sizes (all even, 32-166 px,
median 52, from ADSD boxes of typically 15-30 px).

The output tree `{positive,negative}/` and its `manifest.csv` are written into a temporary folder
beside the destination and renamed into place at the end, so an interrupted run leaves no
partial tree that looks complete. The next run for the same output removes such leftovers; this
assumes one run per output folder at a time. `--overwrite` replaces only a folder that
make-patches wrote, and no output may be, hold or lie inside the frames or the annotations.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
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
    read_voc_with_size,
    read_yolo,
)
from lqer.data.frames import FrameRef, list_frames, read_frames
from lqer.data.layout import CLASSES
from lqer.errors import LqerError
from lqer.io import atomic_folder, check_apart, claim_folder, locked, marker, remove_stale_work

# ADSD names frames like 14_002_5_0016; the fields look like patient, sequence, an unknown
# number and the frame index. Only the last is confirmed by the sample data (consecutive
# indices are consecutive frames of one sequence), so grouping by patient relies on this guess.
ADSD_PATTERN = r"(?P<patient>\d+)_(?P<sequence>\d+)_\d+_(?P<frame>\d+)"
NAME_FIELDS = ("patient", "sequence", "frame")
OFFSETS = {"centre": (0, 0), "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
MANIFEST_START = ["path", "label", "frame_id", "source"]  # the first columns make-patches writes
KIND = "patches"  # its output is marked as make-patches'
OUTPUT_NAMES = {*CLASSES, "manifest.csv", "warnings.txt", marker(KIND)}


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
) -> tuple[dict[str, list[Box] | Path], dict[str, tuple[int, int]]]:
    """Boxes per annotated frame id, or the YOLO file (read once the image size is known), and
    the image sizes that VOC files declare.

    Frames without annotations and annotations without frames are reported as warnings.
    """
    sizes: dict[str, tuple[int, int]] = {}
    if fmt == "coco":
        annotations = Path(annotations)
        if not annotations.is_file():
            raise LqerError(f"COCO annotation file not found: {annotations}")
        found: dict[str, list[Box] | Path] = dict(read_coco(annotations))
    else:
        files = find_annotation_files(annotations, fmt)
        found = dict(files)
        if fmt == "voc":
            for key, path in files.items():
                found[key], size = read_voc_with_size(path)
                if size is not None:
                    sizes[key] = size
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
    return {k: v for k, v in found.items() if k in ids}, sizes


def check_labels(
    annotated: dict[str, list[Box] | Path],
    labels: tuple[str, ...],
    class_names: list[str] | None,
    summary: PatchSummary,
) -> None:
    """Fail early if no box has a wanted label: labels are matched exactly, and `Stenosis` is
    not `stenosis`. A wanted label that no box has is only a warning."""
    found: Counter = Counter()
    for boxes in annotated.values():
        if isinstance(boxes, Path):  # YOLO: the labels do not depend on the image size
            boxes = read_yolo(boxes, 1, 1, class_names)
        found.update(box.label for box in boxes)
    missing = [label for label in labels if not found[label]]
    if len(missing) == len(labels):
        listing = ", ".join(f"{_show(name)} ({n})" for name, n in found.most_common()) or "none"
        wanted = " or ".join(repr(label) for label in labels)
        raise LqerError(f"no box is labelled {wanted} (--label); labels found: {listing}")
    if missing:
        summary.warnings.append(
            f"no box is labelled {', '.join(repr(label) for label in missing)} (--label)"
        )


def _show(label: str) -> str:
    return label if label.isprintable() else repr(label)


def check_output(out_dir: Path, sources: dict[str, str | Path], overwrite: bool) -> None:
    """Refuse an output whose writing or replacing could destroy the inputs or other data.

    `--overwrite` renames the old folder away and deletes it, so it is allowed only for a
    folder that make-patches wrote and that holds nothing else, as its manifest lists.
    """
    check_apart(out_dir, "--out", sources, folder=True)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not overwrite:
        raise LqerError(f"{out_dir} exists; choose another output folder or pass --overwrite")
    why = foreign_content(out_dir, finished=True)
    if why:
        raise LqerError(
            f"--overwrite: {out_dir} was not written by make-patches ({why}); "
            "remove it yourself or choose another output folder"
        )


def foreign_content(folder: Path, finished: bool) -> str | None:
    """Why `folder` may hold something that make-patches did not write; None if it does not.

    A `finished` output must have make-patches' manifest listing every patch; a work folder of
    a killed run may lack the manifest, but holds no other names.
    """
    if folder.is_symlink() or not folder.is_dir():
        return "it is not a folder"
    extra = sorted(p.name for p in folder.iterdir() if p.name not in OUTPUT_NAMES)
    if extra:
        return f"it holds {', '.join(extra[:3])}"
    listed = None
    manifest = folder / "manifest.csv"
    if manifest.exists() or finished:
        try:
            with manifest.open(newline="") as f:
                reader = csv.reader(f)
                if next(reader, [])[:4] != MANIFEST_START:
                    return "its manifest.csv lacks make-patches' columns"
                listed = {row[0] for row in reader if row}
        except (OSError, UnicodeDecodeError, csv.Error):
            return "no readable manifest.csv"
    for name in CLASSES:
        class_dir = folder / name
        if not class_dir.exists():
            continue
        if class_dir.is_symlink() or not class_dir.is_dir():
            return f"{name} is not a folder"
        for path in class_dir.iterdir():
            if path.is_symlink() or not path.is_file() or path.suffix != ".png":
                return f"it holds {name}/{path.name}"
            if listed is not None and f"{name}/{path.name}" not in listed:
                return f"its manifest.csv does not list {name}/{path.name}"
    return None


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
    if fmt not in FORMATS:
        raise LqerError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        re.compile(cfg.pattern)
    except re.error as e:
        raise LqerError(f"--pattern is not a valid regular expression ({e})") from None
    check_output(
        out_dir, {"the frames folder": frames_dir, "--annotations": annotations}, overwrite
    )
    target = out_dir.resolve()  # a name and a parent even for "." or "sub/.."
    with locked(target.parent, "--out", wait=True):  # one writer beside the output at a time
        remove_stale_work(target, lambda work: foreign_content(work, finished=False))
        return _make_patches(frames_dir, annotations, target, cfg, fmt, class_names, overwrite,
                             progress)  # fmt: skip


def _make_patches(
    frames_dir: str | Path,
    annotations: str | Path,
    target: Path,
    cfg: PatchConfig,
    fmt: str,
    class_names: list[str] | None,
    overwrite: bool,
    progress: bool,
) -> PatchSummary:
    summary = PatchSummary()
    frames = list_frames(frames_dir)
    if not frames:
        raise LqerError(f"no frames (images or DICOM) in {frames_dir}")
    annotated, declared = load_boxes(frames, annotations, fmt, summary)
    if cfg.labels is not None:
        check_labels(annotated, cfg.labels, class_names, summary)
    frames = [ref for ref in frames if ref.id in annotated]
    extra = [g for g in re.compile(cfg.pattern).groupindex if g not in NAME_FIELDS]
    columns = ["path", "label", "frame_id", "source", *NAME_FIELDS, *extra, "box"]
    columns += ["box_xmin", "box_ymin", "box_xmax", "box_ymax", "position", "x", "y", "size"]
    unparsed = []

    with atomic_folder(target) as tmp:
        claim_folder(tmp, KIND)
        for name in CLASSES:
            (tmp / name).mkdir()
        rows = []
        for ref, image in tqdm(read_frames(frames), total=len(frames), disable=not progress):
            height, width = image.shape
            size = declared.get(ref.id, (width, height))
            if size != (width, height):
                summary.warnings.append(
                    f"{ref.id}: the annotation gives the size {size[0]}x{size[1]}, the image is "
                    f"{width}x{height}; its boxes may have been drawn on another version"
                )
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
                name = f"{CLASSES[spec.label]}/{ref.id}_b{spec.box}_{spec.position}.png"
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
