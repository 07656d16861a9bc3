"""The learning curve of `lqer finetune` on A-DSSS (results/finetune/run.sh), from the copied
runs in results/finetune/runs/: results/finetune/curve.csv (a row per budget and start, over
every finished fold and seed), pairs.csv (fine-tuned minus scratch, per fold and seed) and
curve.png. Prints the table as Markdown. Test split of every figure: each fold's validation/.

    python results/finetune/collect.py
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lqer.experiments.tables import markdown_table  # noqa: E402

HERE = Path(__file__).parent
NAME = re.compile(r"fold(\d)-(\w+)-(finetune-seed\d|gentle-seed\d|scratch-seed\d|shipped)")
BUDGETS = ["0", "10", "25", "50", "100", "250", "all"]
METRICS = ("auc", "f1", "sensitivity", "specificity")


def read_runs(folder: Path) -> list[dict]:
    """One row per finished run: fold, budget, start, seed, its test metrics and the seconds
    its epochs took (decoding the images left out)."""
    rows = []
    for run in sorted(folder.glob("*/test_metrics.json")):
        fold, budget, how = NAME.fullmatch(run.parent.name).groups()
        start, _, seed = how.partition("-seed")
        test = json.loads(run.read_text())
        seconds = np.nan  # budget 0: the shipped model, not trained here
        if (run.parent / "history.csv").exists():
            with open(run.parent / "history.csv", newline="") as f:
                seconds = sum(float(r["epoch_time"]) for r in csv.DictReader(f))
        rows.append({"fold": int(fold), "budget": budget, "start": start, "seed": seed,
                     **{m: test[m] for m in METRICS}, "threshold": test["threshold"],
                     "seconds": seconds})  # fmt: skip
    return rows


def curve(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over folds and seeds, per budget and start."""
    table = []
    for budget in BUDGETS:
        for start in ("shipped", "finetune", "gentle", "scratch"):
            runs = [r for r in rows if r["budget"] == budget and r["start"] == start]
            if not runs:
                continue
            row = {"budget": budget, "start": start, "runs": len(runs),
                   "folds": len({r["fold"] for r in runs})}  # fmt: skip
            for m in (*METRICS, "seconds"):
                values = np.array([r[m] for r in runs], float)
                row[f"{m}_mean"] = np.nanmean(values) if np.isfinite(values).any() else np.nan
                row[f"{m}_sd"] = np.std(values, ddof=1) if len(values) > 1 else np.nan
            table.append(row)
    return table


def pairs(rows: list[dict]) -> list[dict]:
    """Fine-tuned minus scratch on the same fold, budget and seed (the same patches)."""
    key = {(r["fold"], r["budget"], r["seed"], r["start"]): r for r in rows}
    out = []
    for (fold, budget, seed, start), tuned in sorted(key.items()):
        scratch = key.get((fold, budget, seed, "scratch"))
        if start in ("finetune", "gentle") and scratch:
            out.append({"fold": fold, "budget": budget, "seed": seed, "start": start,
                        **{f"{m}_diff": tuned[m] - scratch[m] for m in ("auc", "f1")}})  # fmt: skip
    return out


def plot(table: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), constrained_layout=True)
    for ax, metric in zip(axes, ("auc", "f1"), strict=True):
        for start, label in (
            ("finetune", "lqer finetune (10 epochs, 1e-3 / 3e-3)"),
            ("gentle", "gentle (5 epochs, 1e-4 / 1e-3)"),
            ("scratch", "from scratch (the CPU recipe)"),
        ):
            shipped = [r for r in table if r["start"] == "shipped"]  # budget 0 of the tuned
            rows = (shipped if start != "scratch" else []) + [
                r for r in table if r["start"] == start
            ]
            x = [BUDGETS.index(r["budget"]) for r in rows]
            y = [r[f"{metric}_mean"] for r in rows]
            err = [r[f"{metric}_sd"] for r in rows]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
        ax.set_xticks(range(len(BUDGETS)), BUDGETS)
        ax.set_xlabel("labelled training patches (originals)")
        ax.set_ylabel(f"{metric.upper()} on the fold's validation/")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("A-DSSS: fine-tuning lqer-padsd against training from scratch (mean ± sd)")
    fig.savefig(path, dpi=120)


def write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()}
                         for r in rows)  # fmt: skip


def main() -> None:
    rows = read_runs(HERE / "runs")
    if not rows:
        sys.exit("no finished run under results/finetune/runs")
    table, diffs = curve(rows), pairs(rows)
    write(HERE / "curve.csv", table)
    if diffs:
        write(HERE / "pairs.csv", diffs)
    plot(table, HERE / "curve.png")
    paired: dict[tuple, list[float]] = {}
    for d in diffs:
        paired.setdefault((d["budget"], d["start"]), []).append(d["auc_diff"])
    mean_diff = {key: np.mean(values) for key, values in paired.items()}
    lines = markdown_table(
        ["patches", "start", "runs (folds)", "AUC", "F1", "sensitivity", "specificity",
         "training s", "AUC - scratch (paired)"],
        [[r["budget"], r["start"], f"{r['runs']} ({r['folds']})",
          *(f"{r[f'{m}_mean']:.3f} ± {r[f'{m}_sd']:.3f}" for m in METRICS),
          f"{r['seconds_mean']:.0f}" if np.isfinite(r["seconds_mean"]) else "",
          f"{mean_diff[r['budget'], r['start']]:+.3f}" if (r["budget"], r["start"]) in mean_diff
          else ""] for r in table],
    )  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
