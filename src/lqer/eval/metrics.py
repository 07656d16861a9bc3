"""The one metric engine: binary classification metrics, with stenosis (label 1) the positive
class, and the statistics that compare classifiers on one test set: stratified percentile
bootstrap intervals, the paired DeLong test, calibration (Brier score, ECE) and thresholds.

Every metric takes `(labels, probs)` of shape (..., n) and returns (...), so a bootstrap of a
few thousand resamples costs a few array operations. A sample is called positive when
`prob >= threshold`. Confusion counts are always in sklearn's order: tn, fp, fn, tp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata

Metric = Callable[[np.ndarray, np.ndarray], np.ndarray]

ECE_BINS = 15


# ----------------------------------------------------------------------------- metrics


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0 (e.g. PPV when nothing is called positive)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def confusion_counts(labels: np.ndarray, probs: np.ndarray, threshold: float):
    """tn, fp, fn, tp along the last axis: the matrix [[tn, fp], [fn, tp]] read row by row."""
    pred = np.asarray(probs) >= threshold
    pos = np.asarray(labels) == 1
    return (
        (~pred & ~pos).sum(-1),
        (pred & ~pos).sum(-1),
        (~pred & pos).sum(-1),
        (pred & pos).sum(-1),
    )


def auc(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC from midranks; ties count one half. NaN without both classes."""
    ranks = rankdata(probs, axis=-1)
    n_pos = (labels == 1).sum(-1)
    n_neg = labels.shape[-1] - n_pos
    rank_sum = np.where(labels == 1, ranks, 0.0).sum(-1)
    return _ratio(rank_sum - n_pos * (n_pos + 1) / 2, n_pos * n_neg)


def brier(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return ((probs - labels) ** 2).mean(-1)


def brier_score(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(brier(np.asarray(labels, float), np.asarray(probs, float)))


def ece(labels: np.ndarray, probs: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """Expected calibration error of P(positive) over `bins` equal-width bins."""
    flat = np.ndim(probs) == 1
    labels, probs = np.atleast_2d(labels), np.atleast_2d(probs)
    rows, n = probs.shape
    which = np.minimum((probs * bins).astype(int), bins - 1) + bins * np.arange(rows)[:, None]
    size = rows * bins
    conf = np.bincount(which.ravel(), probs.ravel(), minlength=size).reshape(rows, bins)
    freq = np.bincount(which.ravel(), labels.ravel(), minlength=size).reshape(rows, bins)
    out = np.abs(freq - conf).sum(-1) / n  # sum_b n_b/n * |mean(y_b) - mean(p_b)|
    return out[0] if flat else out


# Rates of the confusion counts (tn, fp, fn, tp).
RATES = {
    "accuracy": lambda tn, fp, fn, tp: _ratio(tp + tn, tn + fp + fn + tp),
    "f1": lambda tn, fp, fn, tp: _ratio(2 * tp, 2 * tp + fp + fn),
    "sensitivity": lambda tn, fp, fn, tp: _ratio(tp, tp + fn),
    "specificity": lambda tn, fp, fn, tp: _ratio(tn, tn + fp),
    "ppv": lambda tn, fp, fn, tp: _ratio(tp, tp + fp),
    "npv": lambda tn, fp, fn, tp: _ratio(tn, tn + fn),
}
NAMES = ("auc", *RATES, "brier", "ece")  # every metric, in the order tables show them

# Older names that run folders carry beside the metric's own (metrics.json, history.csv, and
# the figures that read them); the same values, kept so that earlier runs still read.
RUN_FILE_ALIASES = {"precision": "ppv", "recall_positive": "sensitivity",
                    "recall_negative": "specificity"}  # fmt: skip


def threshold_metrics(threshold: float) -> dict[str, Metric]:
    """Metrics of the hard decision `prob >= threshold`."""

    def metric(rate):
        return lambda labels, probs: rate(*confusion_counts(labels, probs, threshold))

    return {name: metric(rate) for name, rate in RATES.items()}


def all_metrics(threshold: float) -> dict[str, Metric]:
    """Every metric, in `NAMES` order: threshold-free ones and those of the decision."""
    return {"auc": auc, **threshold_metrics(threshold), "brier": brier, "ece": ece}


def binary_metrics(labels, probs, threshold: float = 0.5) -> dict:
    """A run's summary of `probs` (probability of stenosis) against 0/1 `labels`: every metric
    of `NAMES` as floats, their run-file aliases, and the confusion matrix."""
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=float)
    counts = confusion_counts(labels, probs, threshold)
    values = {name: float(metric(labels, probs)) for name, metric in all_metrics(threshold).items()}
    tn, fp, fn, tp = (int(c) for c in counts)
    return {
        "n": int(len(labels)),
        "prevalence": float(labels.mean()) if len(labels) else math.nan,
        "threshold": float(threshold),
        **values,
        **{alias: values[name] for alias, name in RUN_FILE_ALIASES.items()},
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }


def format_table(metrics: dict, title: str = "") -> str:
    """A small fixed-width table of a `binary_metrics` summary, for the terminal."""
    lines = [title] if title else []
    for name in NAMES:
        lines.append(f"  {name:<16}{metrics[name]:.4f}")
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    lines.append(f"  {'confusion':<16}TN={tn} FP={fp} FN={fn} TP={tp}  (n={metrics['n']})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- thresholds


def threshold_for_sensitivity(labels: np.ndarray, probs: np.ndarray, target: float = 0.9) -> float:
    """The highest threshold whose sensitivity is at least `target`.

    Choose it on validation predictions and apply it unchanged to the test set.
    """
    labels, probs = np.asarray(labels), np.asarray(probs, float)
    positives = np.sort(probs[labels == 1])[::-1]
    if positives.size == 0:
        raise ValueError("no positive samples to choose a threshold from")
    needed = min(max(math.ceil(target * positives.size - 1e-9), 1), positives.size)
    return float(positives[needed - 1])


def best_f1_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """The score that, as threshold (`prob >= t`), maximises F1; the lowest on ties. One
    pass of sklearn's precision-recall curve, not a metrics call per candidate."""
    from sklearn.metrics import precision_recall_curve  # sklearn is slow to import

    precision, recall, thresholds = precision_recall_curve(labels, probs)
    p, r = precision[:-1], recall[:-1]  # the last point has no threshold
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)
    return float(thresholds[int(np.argmax(f1))])


# ----------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_indices(labels: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) indices resampled within each class, so every resample keeps the prevalence
    and AUC stays defined (pROC's default `stratified = TRUE`)."""
    labels = np.asarray(labels)
    parts = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        parts.append(members[rng.integers(0, members.size, (n_boot, members.size))])
    return np.concatenate(parts, axis=1)


def bootstrap_draws(
    metrics: dict[str, Metric],
    labels: np.ndarray,
    probs: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    chunk: int = 250,
) -> dict[str, np.ndarray]:
    """(n_boot,) resampled values of each metric. The same seed and labels give the same
    resamples, so draws of two models on one test set are paired."""
    labels, probs = np.asarray(labels), np.asarray(probs, float)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[np.ndarray]] = {name: [] for name in metrics}
    for start in range(0, n_boot, chunk):  # chunks bound the memory of (n_boot, n) arrays
        idx = bootstrap_indices(labels, min(chunk, n_boot - start), rng)
        y, p = labels[idx], probs[idx]
        for name, fn in metrics.items():
            draws[name].append(fn(y, p))
    return {name: np.concatenate(values) for name, values in draws.items()}


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap(
    metrics: dict[str, Metric],
    labels: np.ndarray,
    probs: np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Point value and percentile bootstrap interval of each metric."""
    labels, probs = np.asarray(labels), np.asarray(probs, float)
    draws = bootstrap_draws(metrics, labels, probs, n_boot, seed)
    return {
        name: Interval(float(fn(labels, probs)), *percentile_interval(draws[name], level))
        for name, fn in metrics.items()
    }


# ----------------------------------------------------------------------------- DeLong


@dataclass(frozen=True)
class DeLongResult:
    auc_a: float
    auc_b: float
    z: float
    p: float
    diff_low: float  # 95% interval of auc_a - auc_b
    diff_high: float


def delong_covariance(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance (k, k) for k score rows (k, n) on the same samples.

    Midrank algorithm of Sun & Xu (2014), IEEE Signal Processing Letters 21(11): O(n log n)
    instead of the O(n^2) structural components of DeLong, DeLong & Clarke-Pearson (1988).
    """
    labels = np.asarray(labels)
    scores = np.atleast_2d(np.asarray(scores, float))
    pos, neg = scores[:, labels == 1], scores[:, labels != 1]
    m, n = pos.shape[1], neg.shape[1]
    if m < 2 or n < 2:
        raise ValueError("DeLong needs at least two positive and two negative samples")
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (tz[:, :m].sum(1) - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:, :m] - tx) / n  # per positive: share of negatives it outranks
    v01 = 1.0 - (tz[:, m:] - ty) / m  # per negative: share of positives that outrank it
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> DeLongResult:
    """Two-sided paired DeLong test of AUC(a) = AUC(b) on the same samples."""
    aucs, cov = delong_covariance(labels, np.stack([scores_a, scores_b]))
    diff = aucs[0] - aucs[1]
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    if var <= 1e-15:  # identical rankings: no evidence of a difference
        z, p, half = 0.0, 1.0, 0.0
    else:
        sd = math.sqrt(var)
        z, p, half = diff / sd, 2 * norm.sf(abs(diff / sd)), norm.ppf(0.975) * sd
    low, high = float(diff - half), float(diff + half)
    return DeLongResult(float(aucs[0]), float(aucs[1]), float(z), float(p), low, high)


def stouffer(z: Sequence[float]) -> tuple[float, float]:
    """One test pooled over seeds: Stouffer's z = sum(z_i) / sqrt(k) of the per-seed DeLong z
    values, and its two-sided p. It assumes independent tests; seeds scored on one test set
    are positively correlated, so this p tends to be smaller than an exact pooled test's."""
    pooled = float(np.sum(z) / np.sqrt(len(z)))
    return pooled, float(2 * norm.sf(abs(pooled)))
