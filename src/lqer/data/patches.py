"""Cut stenosis patches out of annotated angiography frames, the way P-ADSD was built.

Geometry (the paper and LRSE-Net): a square centred on each stenosis box is a positive; the four
4-connected neighbouring squares of the same size are negatives, unless they overlap any stenosis
box of the frame. Squares under `min_size` pixels or crossing the image border are dropped, the
rest are resampled to `out_size`. The side is `scale` times the longer box side, rounded to an
even number: the papers do not give it, and 2 reproduces P-ADSD's sizes (all even, 32-166 px,
median 52, from ADSD boxes of typically 15-30 px).

Two more kinds of negatives, both off by default: `frame_negatives` windows per frame drawn from
the whole frame, on vessels, the border and background in a stated mix (`lqer.data.negatives`),
and `mined` squares that the caller found (`lqer.eval.mining`: a model's strongest false
candidates). Neither overlaps a stenosis box; the manifest's `position` says each one's kind.

The output tree `{positive,negative}/` and its `manifest.csv` are written into a temporary folder
beside the destination and renamed into place at the end, so an interrupted run leaves no
partial tree that looks complete; `lqer.data.patch_output` decides which folders a run may
replace or clean up.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from lqer.data.annotated import check_format, frame_boxes, open_annotated
from lqer.data.annotations import Box
from lqer.data.frames import FrameRef, read_frames
from lqer.data.layout import CLASSES
from lqer.data.negatives import (
    DEFAULT_MIX,
    Square,
    check_mix,
    frame_rng,
    sample_negatives,
    square_overlaps,
)
from lqer.data.patch_output import KIND, check_output, foreign_content
from lqer.errors import LqerError
from lqer.io import atomic_folder, claim_folder, locked, remove_stale_work

# ADSD names frames like 14_002_5_0016; the fields look like patient, sequence, an unknown
# number and the frame index. Only the last is confirmed by the sample data (consecutive
# indices are consecutive frames of one sequence), so grouping by patient relies on this guess.
ADSD_PATTERN = r"(?P<patient>\d+)_(?P<sequence>\d+)_\d+_(?P<frame>\d+)"
NAME_FIELDS = ("patient", "sequence", "frame")
OFFSETS = {"centre": (0, 0), "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
MAX_FRAME_NEGATIVES = 1000


@dataclass
class PatchConfig:
    scale: float = 2.0  # patch side / longer box side
    min_size: int = 32  # smaller squares are dropped
    out_size: int = 64  # resampled side; 0 keeps each patch at its native size
    pattern: str | None = None  # regex with named groups for the frame id; None: ADSD's
    labels: tuple[str, ...] | None = None  # box labels that mean stenosis; None: every box
    frame_negatives: int = 0  # windows per frame drawn from the whole frame
    negative_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    seed: int = 0  # of the whole-frame windows

    def __post_init__(self):
        if not 0 <= self.frame_negatives <= MAX_FRAME_NEGATIVES:
            raise LqerError(f"`frame_negatives` must be 0 to {MAX_FRAME_NEGATIVES}, "
                            f"not {self.frame_negatives}")  # fmt: skip
        self.negative_mix = check_mix(self.negative_mix)


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
        return bool(square_overlaps(self.x, self.y, self.size, box))


@dataclass
class PatchSummary:
    frames: int = 0
    positive: int = 0
    negative: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> number of squares
    warnings: list[str] = field(default_factory=list)
    positions: Counter = field(default_factory=Counter)  # position -> patches written
    unparsed: int = 0  # frame ids that the pattern does not match


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


def extra_negatives(
    frame_id: str,
    image: np.ndarray,
    boxes: list[Box],
    sides: list[int],
    cfg: PatchConfig,
    mined: Sequence[Square],
    dropped: Counter,
) -> list[PatchSpec]:
    """The whole-frame windows (sides drawn from `sides`) and the mined squares of one frame.

    A mined square outside the frame or over a stenosis box is dropped and counted: the caller
    should not have sent it, but a box may have been clipped since it was found.
    """
    height, width = image.shape
    specs = []
    for x, y, size in mined:
        spec = PatchSpec(-1, "mined", int(x), int(y), int(size))
        if not (size > 0 and 0 <= x <= width - size and 0 <= y <= height - size):
            dropped["mined square outside the frame"] += 1
        elif any(spec.overlaps(b) for b in boxes):
            dropped["mined square overlaps a stenosis box"] += 1
        else:
            specs.append(spec)
    if cfg.frame_negatives and sides:
        rng = frame_rng(cfg.seed, frame_id)
        drawn, short = sample_negatives(image, boxes, sides, cfg.frame_negatives,
                                        cfg.negative_mix, rng)  # fmt: skip
        specs += [PatchSpec(-1, kind, *square) for kind, square in drawn]
        dropped.update({f"no free {kind} window": n for kind, n in short.items()})
    return specs


def make_patches(
    frames_dir: str | Path,
    annotations: str | Path,
    out_dir: str | Path,
    cfg: PatchConfig | None = None,
    fmt: str = "voc",
    class_names: list[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    mined: Mapping[str, Sequence[Square]] | None = None,
) -> PatchSummary:
    """Write `out_dir/{positive,negative}/*.png` and `out_dir/manifest.csv`; `mined` adds
    negatives (x, y, side) per frame id."""
    cfg = cfg or PatchConfig()
    out_dir = Path(out_dir)
    check_format(fmt)
    try:
        re.compile(cfg.pattern or ADSD_PATTERN)
    except re.error as e:
        raise LqerError(f"`pattern` is not a valid regular expression ({e})") from None
    check_output(
        out_dir, {"the frames folder": frames_dir, "`annotations`": annotations}, overwrite
    )
    target = out_dir.resolve()  # a name and a parent even for "." or "sub/.."
    with locked(target.parent, "`out`", wait=True):  # one writer beside the output at a time
        remove_stale_work(target, lambda work: foreign_content(work, finished=False))
        return _make_patches(frames_dir, annotations, target, cfg, fmt, class_names, progress,
                             mined or {})  # fmt: skip


def _make_patches(
    frames_dir: str | Path,
    annotations: str | Path,
    target: Path,
    cfg: PatchConfig,
    fmt: str,
    class_names: list[str] | None,
    progress: bool,
    mined: Mapping[str, Sequence[Square]],
) -> PatchSummary:
    summary = PatchSummary()
    frames, annotated, declared = open_annotated(
        frames_dir, annotations, fmt, cfg.labels, class_names, summary
    )
    pattern = cfg.pattern or ADSD_PATTERN
    extra = [g for g in re.compile(pattern).groupindex if g not in NAME_FIELDS]
    columns = ["path", "label", "frame_id", "source", *NAME_FIELDS, *extra, "box"]
    columns += ["box_xmin", "box_ymin", "box_xmax", "box_ymax", "position", "x", "y", "size"]
    unparsed = []

    with atomic_folder(target) as tmp:
        claim_folder(tmp, KIND)
        for name in CLASSES:
            (tmp / name).mkdir()
        rows = []

        def write(ref: FrameRef, image: np.ndarray, specs: list[PatchSpec], boxes: list[Box]):
            fields = parse_name(ref.id, pattern)
            for spec in specs:
                if spec.box >= 0:  # cut around a box
                    name = f"{CLASSES[spec.label]}/{ref.id}_b{spec.box}_{spec.position}.png"
                    box = boxes[spec.box]
                    around = {"box": spec.box, "box_xmin": box.xmin, "box_ymin": box.ymin,
                              "box_xmax": box.xmax, "box_ymax": box.ymax}  # fmt: skip
                else:
                    where = f"x{spec.x}_y{spec.y}_s{spec.size}"
                    name, around = f"{CLASSES[0]}/{ref.id}_{spec.position}_{where}.png", {}
                Image.fromarray(cut(image, spec, cfg.out_size)).save(tmp / name)
                rows.append(
                    {
                        "path": name, "label": spec.label, "frame_id": ref.id,
                        "source": str(ref.path.resolve()), **fields, **around,
                        "position": spec.position, "x": spec.x, "y": spec.y, "size": spec.size,
                    }
                )  # fmt: skip
                summary.positive += spec.label
                summary.negative += 1 - spec.label
                summary.positions[spec.position] += 1

        run_sides: list[int] = []
        waiting: dict[str, list[Box]] = {}  # frames without a positive: the run's sides
        found = frame_boxes(frames, annotated, declared, cfg.labels, class_names,
                            summary.warnings)  # fmt: skip
        for ref, image, boxes in tqdm(found, total=len(frames), disable=not progress):
            specs, dropped = plan_patches(boxes, image.shape[1], image.shape[0], cfg.scale,
                                          cfg.min_size)  # fmt: skip
            summary.frames += 1
            summary.dropped.update(dropped)
            if not parse_name(ref.id, pattern):
                unparsed.append(ref.id)
            sides = [spec.size for spec in specs if spec.label]
            run_sides += sides
            if cfg.frame_negatives and not sides:
                waiting[ref.id] = boxes
            specs += extra_negatives(ref.id, image, boxes, sides, cfg, mined.get(ref.id, ()),
                                     summary.dropped)  # fmt: skip
            write(ref, image, specs, boxes)
        later = [ref for ref in frames if ref.id in waiting and run_sides]
        for ref, image in read_frames(later):  # decoded again: few frames lack a positive
            specs = extra_negatives(ref.id, image, waiting[ref.id], run_sides, cfg, (),
                                    summary.dropped)  # fmt: skip
            write(ref, image, specs, waiting[ref.id])
        if not rows:
            raise LqerError(f"no patch survived (dropped: {dict(summary.dropped)})")
        summary.unparsed = len(unparsed)
        if unparsed and cfg.pattern is not None:  # ADSD's pattern not matching is no news
            summary.warnings.append(
                f"{len(unparsed)} frame id(s) do not match `pattern` {cfg.pattern!r}, "
                f"e.g. {', '.join(unparsed[:3])}; their patient/sequence/frame are empty"
            )
        with (tmp / "manifest.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        if summary.warnings:
            (tmp / "warnings.txt").write_text("\n".join(summary.warnings) + "\n")
    return summary
