"""The dressed models with and without batch norm on the projection, from the runs that
results/dressed/run.sh made: hold-out AUC by epoch. Writes results.md beside this file.

    python results/dressed/collect.py [--cpu "Intel Xeon (AMX), 1 thread"]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = ("lqer-dressed", "classical-dressed")
NORMS = ("none", "batch")


def history(model: str, norm: str) -> list[dict]:
    path = HERE / f"{model}-{norm}" / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", default="Intel Xeon with AMX, 1 thread, second core busy")
    args = parser.parse_args()
    runs = {(m, n): history(m, n) for m in MODELS for n in NORMS}
    epochs = max(len(h) for h in runs.values())
    header = " | ".join(f"{m}, norm={n}" for m, n in runs)
    lines = [
        "# The dressed models: batch norm on the projection (issue 12)", "",
        "The grid's recipe (32 px, from scratch, lr 1e-3 / 3e-3) on a stratified 8,000-patch "
        "subset of P-ADSD train/: 6,800 to train, AUC on the 1,200 held out. The published "
        f"validation/ split was not read. CPU: {args.cpu}. Made by `bash results/dressed/run.sh`.",
        "", f"| epoch | {header} |", "|---" * (len(runs) + 1) + "|",
    ]  # fmt: skip
    for k in range(epochs):
        cells = [f"{float(h[k]['val_auc']):.3f}" if k < len(h) else "" for h in runs.values()]
        lines.append(f"| {k + 1} | " + " | ".join(cells) + " |")
    losses = [f"{float(h[-1]['train_loss']):.4f}" if h else "" for h in runs.values()]
    lines.append("| train loss, last | " + " | ".join(losses) + " |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
