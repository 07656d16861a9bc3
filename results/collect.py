"""Write results/summary.csv from the grid's comparison folders (results/grid.sh): one row per
dataset and model, pooling every finished run of the dataset's comparisons (for A-DSSS, the
five folds x seeds); the columns and rules are lqer.experiments.compare.summary_rows's, and
results/README.md explains them. Prints the same rows as a Markdown table.

    python results/collect.py [RESULTS_FOLDER]    # default: results
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from lqer.experiments.compare import SUMMARY_COLUMNS, summary_rows
from lqer.experiments.tables import markdown_table

DATASETS = {  # name in summary.csv -> its comparison folders under RESULTS_FOLDER/grid
    "P-ADSD": ["padsd"],
    "P-ADSD regrouped": ["padsd-regrouped"],
    "A-DSSS": [f"adsss/fold{k}" for k in range(5)],
}


def collect(results: Path) -> list[dict]:
    """The rows, written to results/summary.csv; a dataset with no comparison yet is left out."""
    rows = []
    for dataset, names in DATASETS.items():
        folders = [results / "grid" / n for n in names]
        present = [f for f in folders if (f / "comparison.json").exists()]
        if present:
            print(f"{dataset}: {', '.join(str(f) for f in present)}", file=sys.stderr)
        rows += summary_rows(dataset, present)
    with open(results / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    rows = collect(Path(sys.argv[1] if len(sys.argv) > 1 else "results"))
    print(
        "\n".join(markdown_table(SUMMARY_COLUMNS, [[r[c] for c in SUMMARY_COLUMNS] for r in rows]))
    )


if __name__ == "__main__":
    main()
