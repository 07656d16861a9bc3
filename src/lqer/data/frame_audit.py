"""Audit of annotated whole-frame sets, such as ARCADE's splits in COCO layout: pixel-identical
frames within and across the sets, frames without a stenosis box, annotation entries whose image
is missing and images that the annotations do not list.

Frames are compared by a hash of their decoded pixels (8-bit grayscale, with the shape), so a
PNG stored as RGB with three equal channels equals its grayscale copy, and two files that only
differ in compression or metadata are the same frame. Identical frames in two splits leak one
into the other; within a split they weigh one frame twice.
"""

from __future__ import annotations

import csv
import hashlib
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from lqer.data.annotated import check_format
from lqer.data.annotations import find_annotation_files, read_coco, read_voc, read_yolo
from lqer.data.frames import list_frames, read_frames
from lqer.errors import LqerError
from lqer.io import check_output_file, output_file

Frame = tuple[str, str]  # (set name, frame id)


@dataclass
class FrameAudit:
    names: list[str]  # the sets, in the order given
    frames: dict[str, int] = field(default_factory=dict)  # set -> frames found
    listed: dict[str, int] = field(default_factory=dict)  # set -> frames the annotations list
    duplicates: list[list[Frame]] = field(default_factory=list)  # groups of identical frames
    paths: dict[Frame, Path] = field(default_factory=dict)
    digests: dict[Frame, str] = field(default_factory=dict)
    boxes: dict[Frame, int] = field(default_factory=dict)  # stenosis boxes of listed frames
    unannotated: dict[str, list[str]] = field(default_factory=dict)  # listed, no stenosis box
    missing: dict[str, list[str]] = field(default_factory=dict)  # listed, no image file
    unlisted: dict[str, list[str]] = field(default_factory=dict)  # image file, not listed
    seconds: float = 0.0  # the audit's wall time


def natural(text: str) -> list:
    """Sort key under which frame 9 comes before frame 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def set_names(folders: list[Path]) -> list[str]:
    """A short name per frames folder: `train` for `ARCADE-stenosis/train/images`; repeated
    names get `#2`, `#3`."""
    names: list[str] = []
    for folder in folders:
        folder = Path(folder).resolve()
        name = folder.parent.name if folder.name == "images" else folder.name
        names.append(name if name not in names else f"{name}#{names.count(name) + 1}")
    return names


def annotation_labels(annotations: Path, fmt: str) -> dict[str, list[str]]:
    """The box labels of every frame that the annotations list (an empty list: no box)."""
    if fmt == "coco":
        if not Path(annotations).is_file():
            raise LqerError(f"COCO annotation file not found: {annotations}")
        return {key: [b.label for b in boxes] for key, boxes in read_coco(annotations).items()}
    files = find_annotation_files(annotations, fmt)
    if fmt == "voc":
        return {key: [b.label for b in read_voc(path)] for key, path in files.items()}
    return {key: [b.label for b in read_yolo(path, 1, 1)] for key, path in files.items()}


def audit_frames(
    sets: list[tuple[str | Path, str | Path]],
    fmt: str = "coco",
    labels: tuple[str, ...] | None = None,
    progress: bool = False,
    duplicates: str | Path | None = None,
) -> FrameAudit:
    """Audit (frames folder, annotations) pairs; `labels` are the box labels that mean
    stenosis (None: every box). With `duplicates`, write the identical frames there as CSV."""
    check_format(fmt)
    if not sets:
        raise LqerError("give at least one `frames` folder with its `annotations`")
    if duplicates is not None:
        check_output_file(duplicates, "`duplicates`", [path for pair in sets for path in pair])
    start = time.perf_counter()
    names = set_names([Path(frames) for frames, _ in sets])
    audit = FrameAudit(names)
    refs = []
    for name, (frames, labelled) in zip(names, sets, strict=True):
        found = list_frames(frames)
        ids = {ref.id for ref in found}
        listed = annotation_labels(Path(labelled), fmt)
        wanted = {k: [x for x in v if labels is None or x in labels] for k, v in listed.items()}
        audit.frames[name], audit.listed[name] = len(found), len(listed)
        audit.unannotated[name] = sorted((k for k, v in wanted.items() if not v), key=natural)
        audit.missing[name] = sorted(set(listed) - ids, key=natural)
        audit.unlisted[name] = sorted(ids - set(listed), key=natural)
        refs += [(name, ref) for ref in found]
        audit.boxes.update({(name, key): len(v) for key, v in wanted.items()})
    groups: dict[str, list[Frame]] = defaultdict(list)
    decoded = read_frames([ref for _, ref in refs])
    for (name, ref), (_, image) in tqdm(zip(refs, decoded, strict=True), total=len(refs),
                                        disable=not progress):  # fmt: skip
        digest = hashlib.sha256(f"{image.shape}".encode() + image.tobytes()).hexdigest()
        key = (name, ref.id)
        audit.paths[key], audit.digests[key] = ref.path, digest
        groups[digest].append(key)
    order = {name: k for k, name in enumerate(names)}
    audit.duplicates = sorted(
        (sorted(g, key=lambda f: (order[f[0]], natural(f[1]))) for g in groups.values()
         if len(g) > 1),
        key=lambda g: (order[g[0][0]], natural(g[0][1])),
    )  # fmt: skip
    if duplicates is not None:
        write_duplicates(audit, duplicates)
    audit.seconds = time.perf_counter() - start
    return audit


def _listing(ids: list[str], limit: int = 10) -> str:
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def report(audit: FrameAudit) -> str:
    lines = []
    for name in audit.names:
        lines.append(
            f"{name}: {audit.frames[name]} frames, {audit.listed[name]} listed in the "
            f"annotations; {len(audit.unannotated[name])} listed without a stenosis box"
            + (f": {_listing(audit.unannotated[name])}" if audit.unannotated[name] else "")
        )
        if audit.missing[name]:
            lines.append(f"  listed but no image file: {len(audit.missing[name])}: "
                         f"{_listing(audit.missing[name])}")  # fmt: skip
        if audit.unlisted[name]:
            lines.append(f"  images the annotations do not list: {len(audit.unlisted[name])}: "
                         f"{_listing(audit.unlisted[name])}")  # fmt: skip
    across = sum(len({s for s, _ in g}) > 1 for g in audit.duplicates)
    lines.append(
        f"pixel-identical frames: {len(audit.duplicates)} group(s), {across} across sets"
        + (":" if audit.duplicates else "")
    )
    for group in audit.duplicates:  # identical frames may still be annotated differently
        lines.append("  " + " = ".join(f"{s} {i} ({_boxes(audit, (s, i))})" for s, i in group))
    return "\n".join(lines)


def _boxes(audit: FrameAudit, frame: Frame) -> str:
    count = audit.boxes.get(frame)
    return "not listed" if count is None else f"{count} box" + "es" * (count != 1)


def write_duplicates(audit: FrameAudit, path: str | Path) -> None:
    """One row per frame of each group of identical frames."""
    with output_file(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["group", "set", "frame_id", "path", "boxes", "sha256"])
        for k, group in enumerate(audit.duplicates):
            for frame in group:
                boxes = audit.boxes.get(frame, "")
                writer.writerow([k, *frame, audit.paths[frame], boxes, audit.digests[frame]])
