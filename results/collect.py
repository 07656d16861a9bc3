"""Write results/summary.csv from the grid's comparison folders (results/grid.sh): one row per
dataset and model, pooling every finished run of the dataset's comparisons (for A-DSSS, the
five folds x seeds); the columns and rules are lqer.experiments.compare.summary_rows's, and
results/README.md explains them. Prints the same rows as a Markdown table. Also writes
results/twins.csv (each circuit model against its classical twin, compare.twin_rows) and
results/grid_time.md (the CPU time of the runs).

    python results/collect.py [RESULTS_FOLDER]    # default: results
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from lqer.experiments.pooling import SUMMARY_COLUMNS, summary_rows, twin_rows
from lqer.experiments.tables import markdown_table

DATASETS = {  # name in summary.csv -> its comparison folders under RESULTS_FOLDER/grid
    "P-ADSD": ["padsd"],
    "P-ADSD regrouped": ["padsd-regrouped"],
    "A-DSSS": [f"adsss/fold{k}" for k in range(5)],
}


def collect(results: Path) -> list[dict]:
    """The rows, written to results/summary.csv; a dataset with no comparison yet is left out."""
    rows, twins = [], []
    for dataset, names in DATASETS.items():
        folders = [results / "grid" / n for n in names]
        present = [f for f in folders if (f / "comparison.json").exists()]
        if present:
            print(f"{dataset}: {', '.join(str(f) for f in present)}", file=sys.stderr)
        rows += summary_rows(dataset, present)
        twins += twin_rows(dataset, present)
    write_rows(results / "summary.csv", rows, SUMMARY_COLUMNS)
    if twins:
        write_rows(results / "twins.csv", twins, list(twins[0]))
    return rows


def write_rows(path: Path, rows: list[dict], columns) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


UNRECORDED = "not recorded"  # runs trained before comparison.json named each run's device


def cpu_time(results: Path) -> list[list]:
    """Training minutes (the runs' summed epoch times, scoring the hold-out included) of every
    run in the tables, per dataset, model and CPU; written to results/grid_time.md."""
    rows = []
    for dataset, names in DATASETS.items():
        minutes: dict[tuple[str, str], list[float]] = {}
        for folder in (results / "grid" / n for n in names):
            manifest = folder / "comparison.json"
            if not manifest.exists():
                continue
            for run in json.loads(manifest.read_text())["runs"]:
                with open(folder / run["run"] / "history.csv", newline="") as f:
                    spent = sum(float(r["epoch_time"]) for r in csv.DictReader(f)) / 60
                if run.get("in_tables"):
                    key = (run["model"], run.get("device", UNRECORDED))
                    minutes.setdefault(key, []).append(spent)
        rows += [[dataset, model, device, len(m), f"{sum(m):.0f}", f"{sum(m) / len(m):.1f}"]
                 for (model, device), m in sorted(minutes.items())]  # fmt: skip
    total = sum(float(r[4]) for r in rows)
    lines = ["# CPU time of the grid (issue 12)", "",
             "Training minutes of every run in the tables: the sum of its epochs, each epoch "
             "training plus scoring the hold-out; testing is not included. One thread per run, "
             "two runs side by side on a 2-core CPU, so a run's minutes are wall minutes of one "
             "core. The device column is the CPU that comparison.json records for the run; "
             f"'{UNRECORDED}' marks runs whose CPU the files do not name: those trained "
             "before comparison.json recorded it, or beside another piece before lqer kept "
             "both pieces' records. Compare minutes only within one CPU.", "",
             *markdown_table(["dataset", "model", "device", "runs", "minutes",
                              "minutes per run"], rows),
             "", f"Total: {total:.0f} core-minutes ({total / 60:.1f} core-hours)."]  # fmt: skip
    (results / "grid_time.md").write_text("\n".join(lines) + "\n")
    return rows


def main() -> None:
    cpu_time(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
    rows = collect(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
    print(
        "\n".join(markdown_table(SUMMARY_COLUMNS, [[r[c] for c in SUMMARY_COLUMNS] for r in rows]))
    )


if __name__ == "__main__":
    main()
