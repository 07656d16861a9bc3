"""Collect the comparisons under runs/ into results/: one cross-dataset table plus each
comparison's own tables and report. Run after results/run_comparisons.sh."""

from __future__ import annotations

import csv
import shutil
import statistics
from pathlib import Path

RUNS, RESULTS = Path("runs"), Path("results")
NAMES = ["compare-padsd", "compare-padsd-regrouped"] + [f"compare-adsss-fold{k}" for k in range(5)]
RULE = "0.5"


def summary(folder: Path) -> dict[tuple[str, str], float]:
    with open(folder / "summary.csv", newline="") as f:
        return {
            (row["model"], row["metric"]): float(row["mean"])
            for row in csv.DictReader(f)
            if RULE in row["rule"] and "sensitivity >=" not in row["rule"]
        }


def main() -> None:
    done = [n for n in NAMES if (RUNS / n / "summary.csv").exists()]
    tables = {n: summary(RUNS / n) for n in done}
    models = list(dict.fromkeys(m for t in tables.values() for m, _ in t))
    folds = [n for n in done if "adsss" in n]
    lines = [
        "| model | "
        + " | ".join(n.removeprefix("compare-") for n in done)
        + (" | A-DSSS mean over folds |" if folds else " |"),
        "|---|" + "---|" * (len(done) + bool(folds)),
    ]
    for m in models:
        cells = [
            f"{tables[n][(m, 'auc')]:.3f} / {tables[n][(m, 'accuracy')]:.3f}"
            if (m, "auc") in tables[n] else "–"
            for n in done
        ]  # fmt: skip
        if folds:
            aucs = [tables[n][(m, "auc")] for n in folds if (m, "auc") in tables[n]]
            accs = [tables[n][(m, "accuracy")] for n in folds if (m, "accuracy") in tables[n]]
            cells.append(f"{statistics.mean(aucs):.3f} / {statistics.mean(accs):.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    out = RESULTS / "summary.md"
    out.write_text(
        "Test AUC / accuracy at threshold 0.5, mean over seeds. Columns: comparison folders "
        "(see results/README.md for the split used as test in each).\n\n" + "\n".join(lines) + "\n"
    )
    for n in done:
        target = RESULTS / n
        target.mkdir(exist_ok=True)
        for name in ("results.md", "results.csv", "summary.csv", "delong.csv", "comparison.json"):
            shutil.copy(RUNS / n / name, target / name)
        report = RUNS / n / "report"
        if report.exists():
            shutil.copy(report / "report.md", target / "report.md")
            figures = target / "figures"
            figures.mkdir(exist_ok=True)
            for png in ("fig1_models.png", "roc.png", "reliability.png", "lqer-seed0-fig2.png",
                        "lqer-seed0-fig3.png", "lqer-seed0-fig4.png"):  # fmt: skip
                if (report / "figures" / png).exists():
                    shutil.copy(report / "figures" / png, figures / png)
    print(out.read_text())


if __name__ == "__main__":
    main()
