"""The comparison's figures, written as PNG (for screens and HTML) and SVG (for print).

Each figure function takes plain arrays or dicts, draws one figure and returns the paths it
wrote, so a notebook can call it on any run. Lines differ by colour *and* marker or dash, so
the figures stay readable in greyscale.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import roc_curve

from lqer.eval import metrics
from lqer.io import atomic_path

REFERENCE_LINE = 0.90  # the sensitivity that the default threshold rule aims for
STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
LINES = [("C0", "o", "-"), ("C3", "s", "--"), ("C2", "^", "-."), ("C1", "D", ":")]


def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg atomically.

    Figures are plain `Figure` objects, not pyplot ones: no backend, no window, nothing to close.
    """
    paths = []
    for ext, dpi in (("png", 200), ("svg", None)):
        path = Path(stem).with_suffix(f".{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    return paths


def read_history(path: str | Path) -> dict[str, np.ndarray]:
    """A run's history.csv as one float array per column (NaN for empty cells)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k] or "nan") for r in rows]) for k in (rows[0] if rows else {})}


def _plot_series(ax, history, columns: Mapping[str, str], title: str, ylabel: str = ""):
    epochs = history["epoch"]
    for (column, label), (color, marker, dash) in zip(columns.items(), LINES, strict=False):
        if column in history:
            ax.plot(epochs, history[column], color=color, marker=marker, ls=dash, label=label)
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
    ax.legend(frameon=False)


def _grid(panels: Sequence[tuple], history, suptitle: str) -> Figure:
    with rc_context(STYLE):
        fig = Figure(figsize=(9, 6.5), layout="constrained")
        axes = fig.subplots(2, 2)
        for ax, (columns, title, ylabel) in zip(axes.flat, panels, strict=True):
            _plot_series(ax, history, columns, title, ylabel)
        fig.suptitle(suptitle)
    return fig


# ----------------------------------------------------------------------------- Fig. 1


def model_bars(
    intervals: Mapping[str, Mapping[str, metrics.Interval]], stem: str | Path, title: str = ""
) -> list[Path]:
    """Fig. 1: accuracy and AUC per model as bars with interval whiskers, a 0.90 reference line."""
    models = list(intervals)
    x = np.arange(len(models))
    width = 0.38
    with rc_context(STYLE):
        fig = Figure(figsize=(max(5, 1.1 * len(models) + 2), 4), layout="constrained")
        ax = fig.subplots()
        for offset, metric, color, hatch in ((-1, "accuracy", "0.55", ""), (1, "auc", "C0", "//")):
            iv = [intervals[m][metric] for m in models]
            values = np.array([i.value for i in iv])
            errors = np.array([[i.value - i.low, i.high - i.value] for i in iv]).T
            ax.bar(x + offset * width / 2, values, width, yerr=np.nan_to_num(errors),
                   color=color, hatch=hatch, edgecolor="black", linewidth=0.6, capsize=3,
                   label=metric.upper() if metric == "auc" else metric.capitalize())  # fmt: skip
        ax.axhline(REFERENCE_LINE, color="black", ls="--", lw=1, label="0.90 reference")
        ax.set_xticks(x, models, rotation=30, ha="right")
        ax.set(ylim=(0, 1.02), ylabel="test value (95% interval)")
        ax.legend(frameon=False, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
        if title:
            fig.suptitle(title)
    return save(fig, stem)


# ----------------------------------------------------------------------------- Fig. 2 and 3


def training_dynamics(history: Mapping[str, np.ndarray], stem: str | Path) -> list[Path]:
    """Fig. 2: validation sensitivity/specificity, precision/recall, learning rates, epoch time."""
    panels = [
        ({"val_sensitivity": "sensitivity", "val_specificity": "specificity"},
         "Sensitivity and specificity", "validation"),
        ({"val_precision": "precision", "val_recall_positive": "recall"},
         "Precision and recall", "validation"),
        ({"lr_backbone": "backbone", "lr_head": "head"}, "Learning rate", "lr"),
        ({"epoch_time": "epoch time"}, "Time per epoch", "seconds"),
    ]  # fmt: skip
    fig = _grid(panels, history, "Training dynamics")
    fig.axes[2].set_yscale("log")
    return save(fig, stem)


def learning_curves(history: Mapping[str, np.ndarray], stem: str | Path) -> list[Path]:
    """Fig. 3: losses, accuracies, validation AUC and F1, and per-class recall by epoch."""
    panels = [
        ({"train_loss": "train", "val_loss": "validation"}, "Loss", "cross-entropy"),
        ({"train_accuracy": "train", "val_accuracy": "validation"}, "Accuracy", ""),
        ({"val_auc": "AUC", "val_f1": "F1"}, "Validation AUC and F1", ""),
        ({"val_recall_positive": "stenosis", "val_recall_negative": "no stenosis"},
         "Recall per class", "validation"),
    ]  # fmt: skip
    return save(_grid(panels, history, "Learning curves"), stem)


# ----------------------------------------------------------------------------- Fig. 4


def test_summary(
    labels: np.ndarray, probs: np.ndarray, threshold: float, stem: str | Path, title: str = ""
) -> list[Path]:
    """Fig. 4: the test confusion matrix at `threshold` and a bar chart of the test metrics."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    matrix = np.reshape(metrics.confusion_counts(labels, probs, threshold), (2, 2))
    scores = metrics.all_metrics(threshold)
    names = ["auc", *metrics.RATES]
    values = [float(scores[n](labels, probs)) for n in names]
    with rc_context(STYLE):
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax_m, ax_b = fig.subplots(1, 2, width_ratios=[1, 1.6])
        ax_m.imshow(matrix, cmap="Greys", vmin=0, vmax=max(1, matrix.max()) * 1.6)
        for (i, j), count in np.ndenumerate(matrix):
            ax_m.text(j, i, f"{count}\n({count / max(1, matrix[i].sum()):.1%})",
                      ha="center", va="center", fontsize=11)  # fmt: skip
        classes = ["no stenosis", "stenosis"]
        ax_m.set_xticks([0, 1], classes)
        ax_m.set_yticks([0, 1], classes)
        ax_m.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix (t = {threshold:.3g})")
        ax_m.grid(False)
        bars = ax_b.bar(names, values, color="0.6", edgecolor="black", linewidth=0.6)
        ax_b.bar_label(bars, fmt="%.3f", fontsize=8)
        ax_b.axhline(REFERENCE_LINE, color="black", ls="--", lw=1, label="target sensitivity 0.90")
        ax_b.set(ylim=(0, 1.2), title="Test metrics")
        ax_b.legend(frameon=False, loc="upper right")
        ax_b.tick_params(axis="x", rotation=30)
        if title:
            fig.suptitle(title)
    return save(fig, stem)


# ----------------------------------------------------------------------------- ROC, calibration


def roc_band(
    labels: np.ndarray, probs: np.ndarray, n_boot: int = 200, seed: int = 0, level: float = 0.95
):
    """FPR grid, ROC TPR and its pointwise percentile bootstrap band (vertical averaging)."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    grid = np.linspace(0, 1, 101)

    def tpr_on_grid(y, p):
        fpr, tpr, _ = roc_curve(y, p)
        return np.interp(grid, fpr, tpr)

    rng = np.random.default_rng(seed)
    idx = metrics.bootstrap_indices(labels, n_boot, rng)
    curves = np.array([tpr_on_grid(labels[i], probs[i]) for i in idx])
    alpha = (1 - level) / 2
    low, high = np.quantile(curves, [alpha, 1 - alpha], axis=0)
    return grid, tpr_on_grid(labels, probs), low, high


def roc_curves(
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    stem: str | Path,
    n_boot: int = 200,
    title: str = "ROC curves (test, 95% bootstrap bands)",
) -> list[Path]:
    """ROC curve of each model with a shaded bootstrap band; `predictions`: name -> (y, p)."""
    with rc_context(STYLE):
        fig = Figure(figsize=(5.2, 5), layout="constrained")
        ax = fig.subplots()
        for k, (name, (y, p)) in enumerate(predictions.items()):
            color, _, dash = LINES[k % len(LINES)]
            color = f"C{k}" if k >= len(LINES) else color
            grid, tpr, low, high = roc_band(y, p, n_boot)
            auc = float(metrics.auc(np.asarray(y), np.asarray(p)))
            ax.plot(grid, tpr, color=color, ls=dash, label=f"{name} (AUC {auc:.3f})")
            ax.fill_between(grid, low, high, color=color, alpha=0.15, lw=0)
        ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls=":")
        ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01))
        ax.set(title=title, aspect="equal")
        ax.legend(frameon=False, loc="lower right")
    return save(fig, stem)


def reliability(
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]],
    stem: str | Path,
    bins: int = 10,
    title: str = "Reliability (test)",
) -> list[Path]:
    """Observed frequency of stenosis against mean predicted probability, per bin, with ECE."""
    edges = np.linspace(0, 1, bins + 1)
    with rc_context(STYLE):
        fig = Figure(figsize=(5.2, 6), layout="constrained")
        ax, ax_h = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls=":", label="perfect calibration")
        for k, (name, (y, p)) in enumerate(predictions.items()):
            y, p = np.asarray(y, float), np.asarray(p, float)
            color, marker, dash = LINES[k % len(LINES)]
            which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
            used = np.bincount(which, minlength=bins) > 0
            mean_p = np.bincount(which, p, bins)[used] / np.bincount(which, minlength=bins)[used]
            freq = np.bincount(which, y, bins)[used] / np.bincount(which, minlength=bins)[used]
            ece = float(metrics.ece(y, p, bins))
            ax.plot(mean_p, freq, color=color, marker=marker, ls=dash,
                    label=f"{name} (ECE {ece:.3f})")  # fmt: skip
            ax_h.hist(p, bins=edges, histtype="step", color=color, ls=dash)
        ax.set(ylabel="observed frequency of stenosis", xlim=(0, 1), ylim=(0, 1), title=title)
        ax.legend(frameon=False, loc="upper left")
        ax_h.set(xlabel="predicted probability of stenosis", ylabel="count", yscale="log")
    return save(fig, stem)
