"""The split audit as a user runs it: gather the splits, find near-duplicates
(`lqer.data.audit`), report how much of each held-out split leaks into training, draw the
closest pairs, and regroup into a split where no cluster of near-duplicates spans two splits.
`regroup` joins near-duplicates into clusters (connected components) and shares the clusters
out with the old splits' proportions.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lqer.data.audit import Audit, AuditConfig, run_audit
from lqer.data.layout import list_folder, read_split_file, write_split
from lqer.data.splits import assign, describe
from lqer.errors import LqerError


def audit_splits(
    folders: dict[str, list[Path]] | None = None,
    split_file: Path | None = None,
    cfg: AuditConfig | None = None,
    pairs: Path | None = None,
    regroup_to: Path | None = None,
    seed: int = 0,
) -> tuple[Audit, str]:
    """Audit split folders ({"train": [dirs], "test": [dirs], ...}) or a split file; with
    `pairs`, draw the closest pairs as a PNG; with `regroup_to`, write a split CSV in which
    near-duplicates stay together. Returns the audit and its report."""
    from lqer.io import check_output_file

    folders = {name: dirs for name, dirs in (folders or {}).items() if dirs}
    inputs = [d for dirs in folders.values() for d in dirs] + [split_file] * bool(split_file)
    for option, path in (("`pairs`", pairs), ("`regroup_to`", regroup_to)):
        if path is not None:
            check_output_file(path, option, inputs)
    if split_file is None and not folders:
        raise LqerError("give split folders (`train` and `test` at least) or a `split_file`")
    if split_file is not None and folders:  # one would be ignored without a word
        raise LqerError("give `split_file` or split folders, not both")
    cfg = cfg or AuditConfig()
    start = time.perf_counter()
    paths, labels, names = gather(folders, split_file)
    audit = run_audit(paths, labels, names, cfg)
    lines = [report(audit, cfg), f"audit time: {time.perf_counter() - start:.1f} s for "
             f"{len(paths)} images"]  # fmt: skip
    if pairs is not None:
        query = "test" if "test" in audit.names else audit.names[1]
        plot_pairs(audit, pairs, query)
        lines.append(f"closest pairs: {pairs}")
    if regroup_to is not None:
        new, groups = regroup(audit, seed)
        sizes = np.bincount(groups)
        lines.append(f"{len(sizes)} clusters of near-duplicates, {int((sizes > 1).sum())} with "
                     f"more than one image, largest {sizes.max()}")  # fmt: skip
        write_split(regroup_to, [Path(p) for p in audit.paths], audit.labels, new)
        lines.append(f"{regroup_to}:\n{describe(audit.labels, new)}")
    return audit, "\n".join(lines)


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
