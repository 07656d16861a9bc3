"""Frames paired with their stenosis boxes, as make-patches and the scans that feed it read them.

Which frames have annotations (and which annotations have no frame) is reported as warnings;
labels are matched exactly; each frame's boxes are checked against its decoded size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Protocol

import numpy as np

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
from lqer.errors import LqerError


class Warns(Protocol):  # what collects the warnings: a PatchSummary, say
    warnings: list[str]


def load_boxes(
    frames: list[FrameRef], annotations: str | Path, fmt: str, summary: Warns
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
    summary: Warns,
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
        raise LqerError(f"no box is labelled {wanted} (`label`); labels found: {listing}")
    if missing:
        summary.warnings.append(
            f"no box is labelled {', '.join(repr(label) for label in missing)} (`label`)"
        )


def _show(label: str) -> str:
    return label if label.isprintable() else repr(label)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise LqerError(f"`fmt` must be one of {', '.join(FORMATS)}, not {fmt!r}")


def open_annotated(
    frames_dir: str | Path,
    annotations: str | Path,
    fmt: str,
    labels: tuple[str, ...] | None,
    class_names: list[str] | None,
    summary: Warns,
) -> tuple[list[FrameRef], dict[str, list[Box] | Path], dict[str, tuple[int, int]]]:
    """The annotated frames, their boxes (YOLO: files) and the sizes VOC files declare."""
    check_format(fmt)
    frames = list_frames(frames_dir)
    if not frames:
        raise LqerError(f"no frames (images or DICOM) in {frames_dir}")
    annotated, declared = load_boxes(frames, annotations, fmt, summary)
    if labels is not None:
        check_labels(annotated, labels, class_names, summary)
    return [ref for ref in frames if ref.id in annotated], annotated, declared


def frame_boxes(
    frames: list[FrameRef],
    annotated: dict[str, list[Box] | Path],
    declared: dict[str, tuple[int, int]],
    labels: tuple[str, ...] | None,
    class_names: list[str] | None,
    warnings: list[str],
) -> Iterator[tuple[FrameRef, np.ndarray, list[Box]]]:
    """Each frame decoded, with its stenosis boxes checked against its size."""
    for ref, image in read_frames(frames):
        height, width = image.shape
        size = declared.get(ref.id, (width, height))
        if size != (width, height):
            warnings.append(
                f"{ref.id}: the annotation gives the size {size[0]}x{size[1]}, the image is "
                f"{width}x{height}; its boxes may have been drawn on another version"
            )
        boxes = annotated[ref.id]
        if isinstance(boxes, Path):
            boxes = read_yolo(boxes, width, height, class_names)
        if labels is not None:
            boxes = [b for b in boxes if b.label in labels]
        yield ref, image, check_boxes(ref.id, boxes, width, height, warnings)


def annotated_frames(
    frames_dir: str | Path,
    annotations: str | Path,
    fmt: str = "voc",
    labels: tuple[str, ...] | None = None,
    class_names: list[str] | None = None,
) -> Iterator[tuple[FrameRef, np.ndarray, list[Box]]]:
    """The frames that make-patches would cut, with their boxes, for a caller that scans them
    first (hard-negative mining); make-patches reports the warnings."""
    summary = SimpleNamespace(warnings=[])
    opened = open_annotated(frames_dir, annotations, fmt, labels, class_names, summary)
    yield from frame_boxes(*opened, labels, class_names, summary.warnings)
