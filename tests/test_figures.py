"""Every figure renders from synthetic inputs to a non-trivial PNG and SVG."""

import numpy as np
import pytest

from lqer.eval import figures
from lqer.eval import metrics as stats


def check(paths):
    assert [p.suffix for p in paths] == [".png", ".svg"]
    png, svg = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert b"<svg" in svg.read_bytes()[:2000] and svg.stat().st_size > 10_000


@pytest.fixture
def history(tmp_path):
    epochs = np.arange(1, 6)
    columns = {
        "epoch": epochs,
        "lr_backbone": 1e-4 / epochs,
        "lr_head": 1e-3 / epochs,
        "train_loss": 1 / epochs,
        "train_accuracy": 1 - 0.5 / epochs,
        "val_loss": 1.2 / epochs,
        "val_accuracy": 1 - 0.6 / epochs,
        "val_auc": 1 - 0.4 / epochs,
        "val_f1": 1 - 0.7 / epochs,
        "val_sensitivity": 1 - 0.5 / epochs,
        "val_specificity": 1 - 0.3 / epochs,
        "val_precision": 1 - 0.6 / epochs,
        "val_npv": 1 - 0.2 / epochs,
        "val_recall_positive": 1 - 0.5 / epochs,
        "val_recall_negative": 1 - 0.3 / epochs,
        "epoch_time": 10 + epochs,
    }
    path = tmp_path / "history.csv"
    lines = [",".join(columns)] + [
        ",".join(f"{columns[k][i]:.6g}" for k in columns) for i in range(5)
    ]
    path.write_text("\n".join(lines) + "\n")
    return figures.read_history(path)


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.25).astype(int)
    good = 1 / (1 + np.exp(-(3 * y - 1.5 + rng.normal(0, 1, 300))))
    weak = 1 / (1 + np.exp(-(1 * y - 0.5 + rng.normal(0, 1, 300))))
    return {"lqer": (y, good), "cnn": (y, weak)}


def test_history_is_read_as_float_columns(history):
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert history["val_auc"][0] == pytest.approx(0.6)


def test_model_bars(tmp_path, predictions):
    intervals = {
        name: stats.bootstrap(stats.all_metrics(0.5), y, p, n_boot=200)
        for name, (y, p) in predictions.items()
    }
    check(figures.model_bars(intervals, tmp_path / "fig1_models"))


def test_training_figures(tmp_path, history):
    check(figures.training_dynamics(history, tmp_path / "fig2"))
    check(figures.learning_curves(history, tmp_path / "fig3"))


def test_test_summary(tmp_path, predictions):
    y, p = predictions["lqer"]
    check(figures.test_summary(y, p, 0.4, tmp_path / "fig4", title="lqer, seed 0"))


def test_roc_band_brackets_the_curve(predictions):
    y, p = predictions["lqer"]
    grid, tpr, low, high = figures.roc_band(y, p, n_boot=200)
    assert grid.shape == tpr.shape == low.shape == (101,)
    assert (low <= high).all() and (high - low).max() > 0.01
    assert np.mean((low <= tpr) & (tpr <= high)) > 0.9


def test_roc_and_reliability(tmp_path, predictions):
    check(figures.roc_curves(predictions, tmp_path / "roc", n_boot=100))
    check(figures.reliability(predictions, tmp_path / "reliability"))


def test_epochs_sit_on_whole_number_ticks():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    history = {"epoch": np.array([1.0, 2.0, 3.0]), "val_auc": np.array([0.6, 0.7, 0.72])}
    figures._plot_series(ax, history, {"val_auc": "AUC"}, "AUC")
    ax.figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
