"""Train/val/test splits written as split files (`lqer.data.layout`), so that a run can be
reproduced exactly.

Every strategy is one function, `assign`, applied to different groups: single images (random),
patients or sequences from a make-patches manifest, or near-duplicate clusters from the audit.
Whole groups go to one split, in random order, each to the split whose classes lag furthest
behind their target, so that each split gets its share of positives and negatives.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from lqer.config import MAX_FOLDS
from lqer.data.layout import (
    PUBLISHED_NAMES,
    SPLITS,
    augmentation_groups,
    fold_folders,
    parse_label,
    read_tree,
)
from lqer.errors import LqerError
from lqer.guarded_yaml import shown

PAPER_FRACTIONS = {"train": 0.8, "test": 0.2}


def parse_fractions(text: str) -> dict[str, float]:
    """`train=0.8,test=0.2` -> {"train": 0.8, "test": 0.2}, normalised to sum to one."""
    fractions = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        try:
            fractions[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or name not in SPLITS or not 0 <= fractions[name] < math.inf:  # nan too
            raise LqerError(f"`fractions`: expected e.g. train=0.8,test=0.2, got {shown(text)}")
    total = sum(fractions.values())
    if "train" not in fractions or total <= 0:
        raise LqerError(f"`fractions`: needs a positive train share, got {shown(text)}")
    return {name: value / total for name, value in fractions.items()}


def assign(
    labels: np.ndarray, groups: np.ndarray, fractions: dict[str, float], seed: int = 0
) -> np.ndarray:
    """The split name of every item, keeping each group within one split, stratified by label."""
    labels = np.asarray(labels, dtype=int)
    names = list(fractions)
    target = np.array([fractions[n] for n in names])[:, None]  # (S, 1)
    keys, inverse = np.unique(np.asarray(groups), return_inverse=True)
    counts = np.zeros((len(keys), 2))
    np.add.at(counts, (inverse, labels), 1)
    totals = np.maximum(counts.sum(0), 1)
    # Random order, not largest first: that would put every big cluster into train and leave
    # the test set to isolated images. The shares then miss by at most about one group.
    order = np.random.default_rng(seed).permutation(len(keys))
    filled = np.zeros((len(names), 2))
    chosen = np.empty(len(keys), dtype=int)
    for g in order:
        deficit = (target * totals - filled) / totals  # share of each class still missing
        chosen[g] = int(np.argmax(deficit @ counts[g]))
        filled[chosen[g]] += counts[g]
    sizes = dict(zip(names, filled.sum(1), strict=True))
    empty = [name for name, size in sizes.items() if fractions[name] and not size]
    if empty:
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""  # one short line
        raise LqerError(
            f"{len(keys)} group(s) are too few to fill the split(s) {', '.join(empty[:5])}{more}"
        )
    return np.array(names)[chosen[inverse]]


def check_folds(k: int, groups: int | None = None) -> None:
    """k folds: at least 2, at most MAX_FOLDS and, once the data is known, at most one fold
    per group, so that every fold has a test part."""
    if not 2 <= k <= MAX_FOLDS:
        raise LqerError(f"`folds` must be 2 to {MAX_FOLDS}, got {k}")
    if groups is not None and k > groups:
        raise LqerError(f"`folds` {k}: the data has only {groups} group(s) to share out")


def kfold(labels: np.ndarray, groups: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """k train/test assignments; fold i tests on the i-th of k group-disjoint parts."""
    check_folds(k, len(np.unique(groups)))
    part = assign(labels, groups, {str(i): 1 / k for i in range(k)}, seed)
    return [np.where(part == str(i), "test", "train") for i in range(k)]


def read_manifest(
    path: str | Path, by: str | None = None
) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Paths, labels and groups of a make-patches manifest.

    `by` is a manifest column; `sequence` means patient and sequence together, since sequence
    numbers restart for every patient. Without `by`, groups are single images.
    """
    path = Path(path)
    if not path.is_file():
        raise LqerError(f"manifest not found: {path}")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise LqerError(f"{path}: a manifest needs at least the columns path,label")
    columns = ["patient", "sequence"] if by == "sequence" else [by] if by else []
    for column in columns:
        if column not in rows[0]:
            raise LqerError(f"{path}: no column {shown(column)} to group by")
        missing = sum(not row[column] for row in rows)
        if missing:
            raise LqerError(
                f"{path}: {missing} row(s) have no {column}; check make-patches `pattern`"
            )
    paths = [path.parent / row["path"] for row in rows]  # an absolute row path stays as it is
    labels = np.array([parse_label(row["label"], f"{path}:{n}") for n, row in enumerate(rows, 2)])
    if columns:
        groups = np.array(["/".join(row[c] for c in columns) for row in rows])
    else:
        groups = augmentation_groups(paths)
    return paths, labels, groups


def describe(labels: np.ndarray, splits: np.ndarray) -> str:
    """One line per split: images, positives, negatives and share of all images."""
    present = set(splits.tolist())
    order = [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))
    lines = []
    for name in order:
        member = splits == name
        positives = int(labels[member].sum())
        lines.append(
            f"{name:>5}: {member.sum():6d} images ({positives} positive, "
            f"{member.sum() - positives} negative), {member.mean():.1%}"
        )
    return "\n".join(lines)


def published_renames(rename: dict[str, str], found: set[str], root: Path) -> dict[str, str]:
    """`--rename` as {split read: new name}; an old name must be a split of `root` (in its
    folder name, `validation`, or ours, `val`) and a new one a split file's name."""
    renames = {}
    for old, new in rename.items():
        ours = PUBLISHED_NAMES.get(old)
        if ours not in found:
            has = ", ".join(sorted(found))
            raise LqerError(f"`rename`: {shown(old)} is not a split of {root} (it has {has})")
        if new not in SPLITS:
            raise LqerError(f"`rename`: {shown(new)} is not one of {', '.join(SPLITS)}")
        renames[ours] = new
    return renames


STRATEGIES = ("published", "random", "group", "paper")
Split = tuple[list[Path], np.ndarray, np.ndarray]  # paths, labels, split names


def make_splits(
    strategy: str,
    root: str | Path | None = None,
    manifest: str | Path | None = None,
    by: str = "patient",
    fractions: dict[str, float] | None = None,
    folds: int | None = None,
    seed: int = 0,
    rename: dict[str, str] | None = None,
) -> list[Split]:
    """One split, or one per fold.

    - published: the folders of `root` (train/, validation/, test/; every fold<k>/ for A-DSSS);
    - random: stratified over single images (augmented copies kept with their original);
    - group: whole `by` groups (patient, sequence or any manifest column) per split;
    - paper: the paper's patient-independent 80:20 train/test split.
    With `folds`, random, group and paper give k train/test splits instead.
    """
    if strategy not in STRATEGIES:
        raise LqerError(f"`strategy` must be one of {', '.join(STRATEGIES)}, not {shown(strategy)}")
    if rename and strategy != "published":  # the others make their own names
        raise LqerError(f"`rename` changes published split names: not for `strategy` {strategy}")
    if folds is not None:
        check_folds(folds)
    if strategy == "published":
        if root is None:
            raise LqerError("`strategy` published needs `root`")
        root = Path(root)
        fold_dirs = fold_folders(root)
        results = [read_tree(d) for d in (fold_dirs or [root])]
        found = {str(s) for _, _, names in results for s in names}
        renames = published_renames(rename or {}, found, root)
        return [(p, y, np.array([renames.get(s, s) for s in names])) for p, y, names in results]
    if strategy in ("group", "paper") and manifest is None:
        raise LqerError(f"`strategy` {strategy} needs a `manifest` from make-patches")
    if strategy == "paper":
        by, fractions = "patient", PAPER_FRACTIONS
    if manifest is not None:
        paths, labels, groups = read_manifest(manifest, by if strategy != "random" else None)
    elif root is not None:
        paths, labels, _ = read_tree(root)
        groups = augmentation_groups(paths)
    else:
        raise LqerError("give `manifest` or `root`")
    if folds is not None:
        return [(paths, labels, s) for s in kfold(labels, groups, folds, seed)]
    return [(paths, labels, assign(labels, groups, fractions or PAPER_FRACTIONS, seed))]
