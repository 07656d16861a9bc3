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
cores, with no Python loop over pairs. `regroup` joins near-duplicates into clusters (connected
components) and splits by cluster, so that no cluster spans train and test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lqer.data.frames import load_resized
from lqer.data.layout import SPLITS, list_folder, read_split_file
from lqer.data.splits import assign
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
    x = F.adaptive_avg_pool2d(images[:, None].float(), thumb).flatten(1)
    x = x - x.mean(1, keepdim=True)
    return F.normalize(x, dim=1)


def _dct_matrix(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    return torch.cos(math.pi * (2 * i + 1) * k / (2 * n)).float()


def phash_vectors(images: torch.Tensor) -> torch.Tensor:
    """+-1 vectors of the 64 hash bits; their dot product is 64 - 2 * Hamming distance."""
    x = F.interpolate(images[:, None].float(), size=(32, 32), mode="area")[:, 0]
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


def gather(
    folders: dict[str, list[Path]] | None = None, split_file: Path | None = None
) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Paths, labels and split names from split folders ({name: [dirs]}) or a split file."""
    if split_file is not None:
        groups = read_split_file(split_file)
    else:
        groups = {name: [item for d in dirs for item in list_folder(d)]
                  for name, dirs in (folders or {}).items()}  # fmt: skip
    rows = [(path, label, name) for name, items in groups.items() for path, label in items]
    paths = [path for path, _, _ in rows]
    return paths, np.array([r[1] for r in rows], dtype=int), np.array([r[2] for r in rows])


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


def exact_duplicates(audit: Audit, query: str, ref: str = "train") -> int:
    """`query` images identical, at the audit's resolution, to some `ref` image."""
    flat = audit.images.flatten(1).numpy()
    keys = {row.tobytes() for row in flat[audit.splits == ref]}
    return sum(row.tobytes() in keys for row in flat[audit.splits == query])


DESCRIPTIONS = {
    "pixel": "RMS distance of standardised {thumb}x{thumb} thumbnails",
    "phash": "Hamming distance of 64-bit perceptual hashes",
}


def report(audit: Audit, cfg: AuditConfig) -> str:
    """The leakage figures as plain text: shares, distances and exact duplicates."""
    counts = ", ".join(f"{n} {int((audit.splits == n).sum())}" for n in audit.names)
    lines = [f"images: {counts} (compared at {cfg.size}x{cfg.size})"]
    train_self = audit.nearest
    for method, found in audit.found.items():
        what = DESCRIPTIONS[method].format(thumb=cfg.thumb)
        lines.append(f"{method}: {what}; near-duplicate if <= {found.threshold:.4g}")
        null = found.null
        lines.append(
            f"  null (non-train images turned by 90 degrees -> train): {cfg.null_rate:.0%} "
            f"quantile {np.quantile(null, cfg.null_rate):.4g}, median {np.median(null):.3f}, "
            f"share under the threshold {np.mean(null <= found.threshold):.1%}"
        )
        ref_d, _ = train_self(method, "train", "train")
        lines.append(
            f"  nearest other train image, train images: median {np.median(ref_d):.3f}, "
            f"mean {ref_d.mean():.3f}"
        )
        for query in audit.names[1:]:
            d, _ = audit.nearest(method, query, "train")
            hit = d <= found.threshold
            member = audit.labels[audit.splits == query]
            lines.append(
                f"  {query} -> nearest train image: median {np.median(d):.3f}, mean {d.mean():.3f}"
            )
            lines.append(
                f"  {query} images with a near-duplicate in train: {hit.sum()} / {len(d)} = "
                f"{hit.mean():.1%} (positives {hit[member == 1].mean():.1%}, "
                f"negatives {hit[member == 0].mean():.1%})"
            )
    if len(audit.found) > 1:
        for query in audit.names[1:]:
            hit = audit.leaked(query)
            lines.append(
                f"either method: {query} images with a near-duplicate in train: "
                f"{hit.sum()} / {len(hit)} = {hit.mean():.1%}"
            )
    for query in audit.names[1:]:
        lines.append(
            f"exact duplicates: {exact_duplicates(audit, query)} {query} image(s) identical to "
            f"a train image at {cfg.size}x{cfg.size}"
        )
    return "\n".join(lines)


# ---- regrouping and figure -----------------------------------------------------------------


def clusters(audit: Audit) -> np.ndarray:
    """Cluster id per image: connected components of the near-duplicate graph."""
    n = len(audit.paths)
    pairs = np.concatenate([found.pairs for found in audit.found.values()])
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def regroup(audit: Audit, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """New split names that keep every cluster in one split, with the old splits' shares."""
    groups = clusters(audit)
    fractions = {name: float(np.mean(audit.splits == name)) for name in audit.names}
    return assign(audit.labels, groups, fractions, seed), groups


def plot_pairs(audit: Audit, path: str | Path, query: str = "test", n: int = 8) -> None:
    """The closest query-train pairs, and pairs just under the threshold, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lqer.io import output_file

    method = next(iter(audit.found))
    threshold = audit.found[method].threshold
    rows = np.flatnonzero(audit.splits == query)
    d, idx = audit.nearest(method, query, "train")
    order = np.argsort(d, kind="stable")
    below = order[d[order] <= threshold]
    picks = [("closest", order[:n]), ("at the threshold", below[-n:] if len(below) else [])]
    fig = plt.figure(figsize=(1.0 * n, 5.0))
    sign = {0: "-", 1: "+"}
    images = audit.images.numpy()
    for band, (title, chosen) in zip(fig.subfigures(2, 1), picks, strict=True):
        caption = f"{title}: {query} (upper), nearest train (lower); {method} distance, labels"
        band.suptitle(caption, fontsize=8)
        axes = band.subplots(2, n, squeeze=False)
        band.subplots_adjust(left=0.01, right=0.99, top=0.85, bottom=0.02, hspace=0.3, wspace=0.05)
        for ax in axes.flat:
            ax.axis("off")
        for col, k in enumerate(chosen):
            axes[0, col].imshow(images[rows[k]], cmap="gray", vmin=0, vmax=255)
            axes[1, col].imshow(images[idx[k]], cmap="gray", vmin=0, vmax=255)
            labels = sign[audit.labels[rows[k]]] + sign[audit.labels[idx[k]]]
            axes[0, col].set_title(f"{d[k]:.2f} {labels}", fontsize=7)
    with output_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
