"""Near-duplicates across splits: how much of a test set is already in the training set.

Patches cut from neighbouring frames of one sequence are near-identical, so a split made without
patient or sequence ids puts copies of test images into training. Two descriptors find them:

- pixel: the image shrunk to `thumb` x `thumb` by averaging and standardised (zero mean, unit
  variance); the distance is the RMS difference, sqrt(2 (1 - r)) for Pearson correlation r, so
  it ignores the brightness and contrast changes between frames and small shifts;
- phash: the 64-bit perceptual hash (signs of the 8x8 lowest DCT frequencies of a 32x32
  version against their median); the distance is the Hamming distance.

Both reduce to dot products of fixed-length vectors, so the search is one matrix product per
block of images over the upper triangle of all pairs: about 30,000 images in seconds on two
cores, with no Python loop over pairs. `lqer.data.split_audit` reports the figures and
regroups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lqer.data.frames import load_resized
from lqer.data.layout import SPLITS
from lqer.data.transforms import resize
from lqer.device import check_memory
from lqer.errors import LqerError
from lqer.guarded_yaml import shown

METHODS = ("pixel", "phash", "both")


@dataclass
class AuditConfig:
    size: int = 64  # images are compared at size x size
    method: str = "pixel"  # pixel | phash | both (a pair is a near-duplicate under either)
    max_distance: float = 0.35  # pixel: RMS distance of standardised thumbnails
    max_hamming: int = 6  # phash: differing bits of 64
    auto_threshold: bool = False  # use the null_rate quantile of null_distances instead
    null_rate: float = 0.01
    thumb: int = 16  # pixel descriptor side
    block: int = 2048  # images per block of the pairwise search

    def __post_init__(self) -> None:
        """The options' ranges, checked before any image is read; named as on the command
        line. A pixel distance of unit vectors lies in [0, 2], a Hamming one in [0, 64]."""
        if self.method not in METHODS:
            raise LqerError(
                f"`method` must be one of {', '.join(METHODS)}, not {shown(self.method)}"
            )
        ranges = {
            "`size`": (self.size, self.thumb <= self.size, f"at least {self.thumb} px"),
            "`max_distance`": (self.max_distance, 0 <= self.max_distance <= 2, "in [0, 2]"),
            "`max_hamming`": (self.max_hamming, 0 <= self.max_hamming <= 64, "in [0, 64]"),
            "`null_rate`": (self.null_rate, 0 < self.null_rate < 1, "in (0, 1)"),
        }
        for option, (value, ok, bound) in ranges.items():
            if not ok:  # NaN fails every comparison, so it lands here too
                raise LqerError(f"{option} must be {bound}, got {value}")


@dataclass
class Neighbours:
    """Nearest image of every split for every image (self excluded), and near-duplicate pairs."""

    method: str
    threshold: float
    distance: np.ndarray  # (N, n_splits) distance to the nearest image of each split
    index: np.ndarray  # (N, n_splits) its index; -1 if the split holds only the image itself
    pairs: np.ndarray  # (E, 2) i < j with distance <= threshold
    null: np.ndarray | None = None  # see null_distances


@dataclass
class Audit:
    paths: list[str]
    labels: np.ndarray
    splits: np.ndarray  # split name per image
    names: list[str]  # split names, column order of Neighbours.distance
    images: torch.Tensor  # (N, size, size) uint8
    found: dict[str, Neighbours] = field(default_factory=dict)

    def nearest(self, method: str, query: str, ref: str) -> tuple[np.ndarray, np.ndarray]:
        """Distance and index of the nearest `ref` image for every `query` image."""
        rows = np.flatnonzero(self.splits == query)
        column = self.names.index(ref)
        found = self.found[method]
        return found.distance[rows, column], found.index[rows, column]

    def leaked(self, query: str = "test", ref: str = "train") -> np.ndarray:
        """Whether each `query` image has a near-duplicate in `ref` under any method run."""
        hits = [
            self.nearest(m, query, ref)[0] <= self.found[m].threshold for m in self.found
        ]  # fmt: skip
        return np.logical_or.reduce(hits)


# ---- descriptors ---------------------------------------------------------------------------


def pixel_vectors(images: torch.Tensor, thumb: int) -> torch.Tensor:
    """Unit vectors whose dot product is the Pearson correlation of the thumbnails."""
    x = resize(images[:, None].float(), thumb, mode="area").flatten(1)
    x = x - x.mean(1, keepdim=True)
    return F.normalize(x, dim=1)


def _dct_matrix(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    return torch.cos(math.pi * (2 * i + 1) * k / (2 * n)).float()


def phash_vectors(images: torch.Tensor) -> torch.Tensor:
    """+-1 vectors of the 64 hash bits; their dot product is 64 - 2 * Hamming distance."""
    x = resize(images[:, None].float(), 32, mode="area")[:, 0]
    c = _dct_matrix(32)[:8]
    low = (c @ x @ c.T).flatten(1)  # (N, 64) lowest frequencies, DC first
    median = low[:, 1:].median(1, keepdim=True).values
    return torch.where(low > median, 1.0, -1.0)


def _to_distance(method: str, similarity: torch.Tensor) -> torch.Tensor:
    if method == "pixel":
        return (2 - 2 * similarity).clamp(min=0).sqrt()
    return (64 - similarity) / 2


def _to_similarity(method: str, distance: float) -> float:
    return 1 - distance**2 / 2 if method == "pixel" else 64 - 2 * distance


# ---- search --------------------------------------------------------------------------------


def search(
    vectors: torch.Tensor, split_codes: np.ndarray, n_splits: int, min_sim: float, block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best similarity and index per image and split, and all pairs with similarity >= min_sim.

    Images must be sorted by split, so that each split is one contiguous column range.
    """
    n = len(vectors)
    bounds = np.searchsorted(split_codes, np.arange(n_splits + 1))
    best = torch.full((n, n_splits), -math.inf)
    arg = torch.full((n, n_splits), -1, dtype=torch.long)
    pairs = [torch.empty(0, 2, dtype=torch.long)]

    def update(row0: int, sims: torch.Tensor, col0: int) -> torch.Tensor:
        """Fold block columns into the rows' best per split; return each row's block maximum."""
        rows = slice(row0, row0 + len(sims))
        top = torch.full((len(sims),), -math.inf)
        for k in range(n_splits):
            lo, hi = max(bounds[k], col0), min(bounds[k + 1], col0 + sims.shape[1])
            if lo >= hi:
                continue
            value, where = sims[:, lo - col0 : hi - col0].max(1)
            better = value > best[rows, k]
            best[rows, k] = torch.where(better, value, best[rows, k])
            arg[rows, k] = torch.where(better, where + lo, arg[rows, k])
            top = torch.maximum(top, value)
        return top

    for i in range(0, n, block):
        for j in range(i, n, block):
            sims = vectors[i : i + block] @ vectors[j : j + block].T
            if i == j:
                sims.fill_diagonal_(-math.inf)
            top = update(i, sims, j)
            if i != j:
                update(j, sims.T.contiguous(), i)
            rows = torch.nonzero(top >= min_sim)[:, 0]  # only these rows hold pairs
            hit = (sims[rows] >= min_sim).nonzero()
            hit = torch.stack([rows[hit[:, 0]] + i, hit[:, 1] + j], 1)
            pairs.append(hit[hit[:, 0] < hit[:, 1]] if i == j else hit)
    return best.numpy(), arg.numpy(), torch.cat(pairs).numpy()


def vectors_for(method: str, images: torch.Tensor, cfg: AuditConfig) -> torch.Tensor:
    return pixel_vectors(images, cfg.thumb) if method == "pixel" else phash_vectors(images)


def null_distances(
    method: str, queries: torch.Tensor, train: torch.Tensor, cfg: AuditConfig
) -> np.ndarray:
    """Nearest-train distances of the query images turned by 90 degrees.

    A turned patch has the statistics of a real one (noise, contrast, vessel widths) but is no
    copy of any training patch, so these distances show how close unrelated patches come by
    chance: their `null_rate` quantile is a threshold with that false-positive rate. This fails
    when training holds rotated copies (offline rotation augmentation, as in A-DSSS): a turned
    test patch then finds the turned copy of its own twin, and the null comes out too close.
    """
    turned = vectors_for(method, torch.rot90(queries, 1, (1, 2)), cfg)
    reference = vectors_for(method, train, cfg)
    starts = range(0, len(turned), cfg.block)
    best = torch.cat([(turned[i : i + cfg.block] @ reference.T).amax(1) for i in starts])
    return _to_distance(method, best).numpy()


def find_neighbours(
    method: str,
    vectors: torch.Tensor,
    split_codes: np.ndarray,
    n_splits: int,
    threshold: float,
    block: int,
) -> Neighbours:
    min_sim = _to_similarity(method, threshold) - 1e-6  # float rounding at the threshold
    best, arg, pairs = search(vectors, split_codes, n_splits, min_sim, block)
    distance = _to_distance(method, torch.from_numpy(best)).numpy()
    return Neighbours(method, threshold, distance, arg, pairs)


# ---- inputs and the whole audit ------------------------------------------------------------


def run_audit(
    paths: list[Path], labels: np.ndarray, splits: np.ndarray, cfg: AuditConfig | None = None
) -> Audit:
    cfg = cfg or AuditConfig()
    names = [s for s in SPLITS if s in set(splits.tolist())]
    if "train" not in names or len(names) < 2:
        raise LqerError("the audit needs a train split and at least one of val or test")
    if len(names) != len(set(splits.tolist())):
        raise LqerError(f"split names must be among {', '.join(SPLITS)}")
    codes = np.array([names.index(s) for s in splits])
    order = np.argsort(codes, kind="stable")
    paths = [str(paths[i]) for i in order]
    # The images as uint8 (twice while decoded parts join), then a float32 copy of them for a
    # descriptor: about 6 bytes per pixel at the peak. Refused before a byte is allocated.
    n, side = len(paths), cfg.size
    check_memory(6 * n * side**2, f"`size` {side}: comparing {n} images at {side}x{side} px")
    images = torch.from_numpy(load_resized(paths, cfg.size))
    audit = Audit(paths, labels[order], splits[order], names, images)
    methods = ("pixel", "phash") if cfg.method == "both" else (cfg.method,)
    train = torch.from_numpy(audit.splits == "train")
    for method in methods:
        null = null_distances(method, audit.images[~train], audit.images[train], cfg)
        threshold = cfg.max_distance if method == "pixel" else float(cfg.max_hamming)
        if cfg.auto_threshold:
            threshold = float(np.quantile(null, cfg.null_rate))
        vectors = vectors_for(method, audit.images, cfg)
        found = find_neighbours(method, vectors, codes[order], len(names), threshold, cfg.block)
        found.null = null
        audit.found[method] = found
    return audit
