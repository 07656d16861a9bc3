"""Binary classification metrics, with stenosis (label 1) as the positive class."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score

METRIC_NAMES = (
    "accuracy", "auc", "f1", "sensitivity", "specificity", "precision", "npv",
    "recall_positive", "recall_negative",
)  # fmt: skip


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def binary_metrics(labels, probs, threshold: float = 0.5) -> dict:
    """Metrics of `probs` (probability of stenosis) against 0/1 `labels` at `threshold`."""
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=float)
    predicted = (probs >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel().tolist()
    sensitivity = _ratio(tp, tp + fn)
    precision = _ratio(tp, tp + fp)
    both = len(np.unique(labels)) == 2
    return {
        "n": int(len(labels)),
        "prevalence": float(labels.mean()) if len(labels) else math.nan,
        "threshold": float(threshold),
        "accuracy": _ratio(tp + tn, len(labels)),
        "auc": float(roc_auc_score(labels, probs)) if both else math.nan,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "sensitivity": sensitivity,
        "specificity": _ratio(tn, tn + fp),
        "precision": precision,
        "npv": _ratio(tn, tn + fn),
        "recall_positive": sensitivity,
        "recall_negative": _ratio(tn, tn + fp),
        "confusion_matrix": [[tn, fp], [fn, tp]],
    }


def format_table(metrics: dict, title: str = "") -> str:
    """A small fixed-width table for the terminal."""
    lines = [title] if title else []
    for name in METRIC_NAMES:
        lines.append(f"  {name:<16}{metrics[name]:.4f}")
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    lines.append(f"  {'confusion':<16}TN={tn} FP={fp} FN={fn} TP={tp}  (n={metrics['n']})")
    return "\n".join(lines)
