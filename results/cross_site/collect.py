"""The cross-site table (results/cross_site/run.sh) from the copied runs in
results/cross_site/runs/: table.csv (a row per training source, model and test set: AUC, F1,
sensitivity and specificity, mean ± sd over seeds, at each run's stored threshold; A-DSSS
as the mean over the folds' validation/ a run was scored on: all five, or fold 0's alone for a
model trained on fold 0) and the Markdown table of AUC
on stdout.

    python results/cross_site/collect.py [RUNS_FOLDER]
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np

from lqer.experiments.tables import markdown_table

HERE = Path(__file__).parent
NAME = re.compile(r"(.+)-(lqer|resnet18)-seed(\d+)")
TESTS = {"padsd": "P-ADSD validation/", "arcade": "ARCADE val/ patches",
         "adsss": "A-DSSS folds' validation/"}  # fmt: skip
METRICS = ("auc", "f1", "sensitivity", "specificity")


def read_scores(runs: Path) -> list[dict]:
    """A row per run and test set; A-DSSS as the mean of the folds a run was scored on."""
    rows = []
    for scores in sorted(runs.glob("*/scores")):
        source, model, seed = NAME.fullmatch(scores.parent.name).groups()
        found = {p.stem: json.loads(p.read_text()) for p in scores.glob("*.json")}
        folds = [found[k] for k in sorted(found) if k.startswith("adsss")]
        if folds:
            found["adsss"] = {m: float(np.mean([f[m] for f in folds])) for m in METRICS}
        for test in TESTS:
            if test in found:
                rows.append({"source": source, "model": model, "seed": int(seed), "test": test,
                             **{m: found[test][m] for m in METRICS}})  # fmt: skip
    return rows


def table(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["source"], r["model"], r["test"]), []).append(r)
    out = []
    for (source, model, test), runs in groups.items():
        row = {"source": source, "model": model, "test": test, "seeds": len(runs)}
        for m in METRICS:
            values = np.array([r[m] for r in runs], float)
            row[f"{m}_mean"] = float(values.mean())
            row[f"{m}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out.append(row)
    return out


def main() -> None:
    runs = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "runs"
    rows = table(read_scores(runs))
    if not rows:
        sys.exit(f"no scored run under {runs}")
    with open(HERE / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()}
                         for r in rows)  # fmt: skip
    cell = {(r["source"], r["model"], r["test"]): r for r in rows}
    lines = []
    for source, model in sorted({(r["source"], r["model"]) for r in rows}):
        cells = []
        for test in TESTS:
            r = cell.get((source, model, test))
            sd = "" if r is None or np.isnan(r["auc_sd"]) else f" ± {r['auc_sd']:.3f}"
            cells.append("" if r is None else f"{r['auc_mean']:.3f}{sd} ({r['seeds']})")
        lines.append([source, model, *cells])
    print("AUC, mean ± sd over seeds (seeds), each run at its stored threshold")
    print("\n".join(markdown_table(["trained on", "model", *TESTS.values()], lines)))


if __name__ == "__main__":
    main()
