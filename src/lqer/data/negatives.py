"""Whole-frame negatives: windows drawn anywhere in a frame and sorted into kinds by simple image
measures, so that a window classifier also learns what a whole-frame scan shows it.

A classifier trained only on a stenosis's four neighbours never sees the frame's edge, its dark
vignette or empty background, and a scan then fires on them (datasets README, ARCADE). Each
window gets one kind, in this order (the manifest's `position`):

- `frame-border`: the window lies within `EDGE` px of the frame edge, or at least
  `BORDER_SHARE` of it is dark vignette. Vignette: pixels darker than half the frame's median
  once dark structures narrower than `WIDE` px are closed (so a vessel reaching the edge is
  not vignette), in pieces connected to the frame edge.
- `frame-vessel`: the window's central half square (what a scan's candidate box covers) holds
  vessel pixels worth a line `VESSEL_WIDTH` px wide across it (at least that many times its
  side), so that small and large windows need the same vessel. Vessel: a black top-hat (grey
  closing with a `NARROW` px square minus the image, smoothed with sigma 1) of at least
  `TOPHAT` grey levels, in pieces of at least `MIN_PIECE` pixels. The catheter is a dark tube
  as well, so it counts as vessel: no measure this simple tells the two apart, and a scan
  confuses them too.
- `frame-background`: the central square holds less vessel than a line `BACKGROUND_WIDTH` px
  wide.

Windows between the two are of no kind and never drawn. Candidates lie on a grid of step
side/8 inside the frame and never overlap a stenosis box; two drawn windows of a frame are
never one candidate to a scan (either's centre inside the other's central square).
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from lqer.data.annotations import Box
from lqer.errors import LqerError
from lqer.guarded_yaml import shown

KINDS = ("vessel", "border", "background")
DEFAULT_MIX = {"vessel": 0.5, "border": 0.25, "background": 0.25}
EDGE = 8  # px: a window this close to the frame edge sees the edge
BORDER_SHARE = 0.1
WIDE = 21  # px: dark structures narrower than this are vessels or catheter, not vignette
NARROW = 15  # px: the top-hat finds dark structures up to about this wide
TOPHAT = 12.0  # grey levels darker than the closed surroundings
MIN_PIECE = 40  # px: smaller top-hat pieces are noise and texture
VESSEL_WIDTH = 3.0  # px
BACKGROUND_WIDTH = 0.5  # px

Square = tuple[int, int, int]  # (x, y, side) of a square window in frame pixels


def square_overlaps(x, y, side, box: Box):
    """Whether the square at (x, y) overlaps `box`; elementwise for arrays of squares."""
    return (x < box.xmax) & (box.xmin < x + side) & (y < box.ymax) & (box.ymin < y + side)


def parse_mix(text: str) -> dict[str, float]:
    """`vessel=0.5,border=0.25,background=0.25` -> shares per kind (see `check_mix`)."""
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = part.partition("=")
        if not sep:
            expected = ",".join(f"{k}=SHARE" for k in KINDS)
            raise LqerError(f"`negative_mix`: expected {expected}, got {shown(text)}")
        try:
            mix[kind.strip()] = float(value)
        except ValueError:
            raise LqerError(f"`negative_mix`: {shown(part)} is not kind=number") from None
    return check_mix(mix)


def check_mix(mix: dict[str, float]) -> dict[str, float]:
    """Shares per kind, scaled to sum to 1; an unknown kind or a negative share is refused."""
    unknown = [kind for kind in mix if kind not in KINDS]
    if unknown:
        raise LqerError(f"`negative_mix`: unknown kind {shown(unknown[0])}; kinds: "
                        f"{', '.join(KINDS)}")  # fmt: skip
    for kind, share in mix.items():
        if not (math.isfinite(share) and share >= 0):
            raise LqerError(f"`negative_mix`: {kind} must be a share >= 0, got {shown(share)}")
    total = sum(mix.values())
    if total <= 0:
        raise LqerError("`negative_mix`: the shares sum to 0")
    return {kind: mix.get(kind, 0.0) / total for kind in KINDS}


def split_count(count: int, mix: dict[str, float], rng: np.random.Generator) -> dict[str, int]:
    """`count` windows shared out by `mix`: the whole parts, and the rest drawn by the
    fractions, so that the run's ratio is the mix's even when the frame's count is not."""
    exact = np.array([count * mix.get(kind, 0.0) for kind in KINDS])
    counts = np.floor(exact + 1e-9).astype(int)
    rest = count - int(counts.sum())
    fractions = np.clip(exact - counts, 0, None)
    if rest > 0 and fractions.sum() > 0:
        extra = rng.choice(len(KINDS), size=rest, replace=False, p=fractions / fractions.sum())
        counts[extra] += 1
    return dict(zip(KINDS, counts.tolist(), strict=True))


@dataclass
class FrameMasks:
    vessel: np.ndarray  # bool (H, W)
    vignette: np.ndarray  # bool (H, W)

    def __post_init__(self):  # summed-area tables, one row and column of zeros in front
        self.tables = {
            name: np.pad(np.cumsum(np.cumsum(mask, 0, dtype=np.int64), 1), ((1, 0), (1, 0)))
            for name, mask in (("vessel", self.vessel), ("vignette", self.vignette))
        }


def frame_masks(image: np.ndarray) -> FrameMasks:
    """Vessel (and catheter) and dark-vignette pixels of one (H, W) frame."""
    smooth = ndi.gaussian_filter(image.astype(np.float32), 1.0)
    tophat = ndi.grey_closing(smooth, size=(NARROW, NARROW)) - smooth
    dark = ndi.grey_closing(smooth, size=(WIDE, WIDE)) < 0.5 * np.median(smooth)
    vignette = _touching_edge(dark)
    vessel = (tophat >= TOPHAT) & ~vignette
    pieces, n = ndi.label(vessel)
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    big = sizes >= MIN_PIECE
    big[0] = False
    return FrameMasks(vessel=big[pieces], vignette=vignette)


def _touching_edge(mask: np.ndarray) -> np.ndarray:
    pieces, _ = ndi.label(mask)
    rim = np.concatenate([pieces[0], pieces[-1], pieces[:, 0], pieces[:, -1]])
    return np.isin(pieces, rim[rim > 0])


def _origins(length: int, side: int) -> np.ndarray:
    step = max(1, side // 8)
    starts = list(range(0, length - side + 1, step))
    if starts[-1] != length - side:
        starts.append(length - side)
    return np.array(starts)


def _window_sums(table: np.ndarray, x: np.ndarray, y: np.ndarray, side: int) -> np.ndarray:
    """Sums of squares of `side` at (x, y), from a summed-area table."""
    return table[y + side, x + side] - table[y, x + side] - table[y + side, x] + table[y, x]


def window_kinds(masks: FrameMasks, side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-left corners (x, y) of the candidate windows of one side, and the kind of each
    (an index into KINDS, or -1 for none)."""
    height, width = masks.vessel.shape
    xs, ys = np.meshgrid(_origins(width, side), _origins(height, side))
    x, y = xs.ravel(), ys.ravel()
    tables = masks.tables
    vignette = _window_sums(tables["vignette"], x, y, side) / side**2
    half, quarter = side // 2, side // 4
    centre = _window_sums(tables["vessel"], x + quarter, y + quarter, half) / half  # px wide
    near_edge = (x < EDGE) | (y < EDGE) | (x + side > width - EDGE) | (y + side > height - EDGE)
    kind = np.full(x.shape, -1)
    kind[centre < BACKGROUND_WIDTH] = KINDS.index("background")
    kind[centre >= VESSEL_WIDTH] = KINDS.index("vessel")
    kind[near_edge | (vignette >= BORDER_SHARE)] = KINDS.index("border")
    return x, y, kind


def frame_rng(seed: int, frame_id: str) -> np.random.Generator:
    """One generator per frame, from the seed and the frame's id: a frame's windows do not
    depend on which other frames the run holds, nor on their order."""
    return np.random.default_rng([seed, zlib.crc32(frame_id.encode())])


def sample_negatives(
    image: np.ndarray,
    boxes: list[Box],
    sides: list[int],
    count: int,
    mix: dict[str, float],
    rng: np.random.Generator,
) -> tuple[list[tuple[str, Square]], Counter]:
    """`count` windows of the frame shared out by `mix`, as (kind, square), with sides drawn
    from `sides`; and, per kind, how many found no free window (they are not made up by
    other kinds, so that the ratio stays the stated one)."""
    masks = frame_masks(image)
    grids: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    drawn: list[tuple[str, Square]] = []
    short: Counter = Counter()
    for kind, wanted in split_count(count, mix, rng).items():
        for _ in range(wanted):
            side = int(rng.choice(sides))
            if side not in grids:
                grids[side] = window_kinds(masks, side)
            x, y, kinds = grids[side]
            free = kinds == KINDS.index(kind)
            for box in boxes:
                free &= ~square_overlaps(x, y, side, box)
            for _, other in drawn:
                free &= ~_one_candidate((x, y, side), other)
            picks = np.flatnonzero(free)
            if not len(picks):
                short[f"frame-{kind}"] += 1
                continue
            pick = picks[rng.integers(len(picks))]
            drawn.append((f"frame-{kind}", (int(x[pick]), int(y[pick]), side)))
    return drawn, short


def _one_candidate(first, second):
    """Whether either window's centre lies inside the other's central half square, where a
    scan puts its candidate box (elementwise for arrays in `first`)."""

    def centre_in(a, b):
        (ax, ay, aside), (bx, by, bside) = a, b
        cx, cy = ax + aside / 2, ay + aside / 2
        lo_x, lo_y = bx + bside / 4, by + bside / 4
        return (lo_x <= cx) & (cx <= lo_x + bside / 2) & (lo_y <= cy) & (cy <= lo_y + bside / 2)

    return centre_in(first, second) | centre_in(second, first)
