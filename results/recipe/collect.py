"""The recipe curve: hold-out AUC against CPU minutes, per input size, from the runs that
results/recipe/run.sh made. Writes curve.csv, curve.md and curve.png beside this file.

    python results/recipe/collect.py [--cpu "Intel Xeon (AMX), 1 thread"]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

HERE = Path(__file__).resolve().parent


def runs() -> dict[int, list[dict]]:
    out = {}
    for folder in sorted(HERE.glob("lqer-*px")):
        with open(folder / "history.csv", newline="") as f:
            out[int(folder.name[5:-2])] = list(csv.DictReader(f))
    return dict(sorted(out.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", default="Intel Xeon with AMX, 1 thread, second core busy")
    args = parser.parse_args()
    rows = []
    for size, history in runs().items():
        minutes, best = 0.0, 0.0
        for r in history:
            minutes += float(r["epoch_time"]) / 60
            best = max(best, float(r["val_auc"]))
            rows.append({"size": size, "epoch": int(r["epoch"]), "cpu_minutes": round(minutes, 2),
                         "val_auc": float(r["val_auc"]), "best_val_auc": best})  # fmt: skip
    with open(HERE / "curve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# Recipe: hold-out AUC against CPU minutes (issue 12)", "",
        f"LQER from scratch on all of P-ADSD train/; AUC on its stratified 15% hold-out "
        f"(3,608 patches); the published validation/ split was not read. CPU: {args.cpu}. "
        "Minutes are training plus scoring the hold-out, summed over epochs.", "",
        "| size | epoch | CPU minutes | hold-out AUC | best so far |", "|---|---|---|---|---|",
    ]  # fmt: skip
    lines += [f"| {r['size']} | {r['epoch']} | {r['cpu_minutes']:.1f} | {r['val_auc']:.3f} | "
              f"{r['best_val_auc']:.3f} |" for r in rows]  # fmt: skip
    (HERE / "curve.md").write_text("\n".join(lines) + "\n")
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    by_time, by_epoch = fig.subplots(1, 2)
    for size in sorted({r["size"] for r in rows}):
        mine = [r for r in rows if r["size"] == size]
        by_time.plot([r["cpu_minutes"] for r in mine], [r["val_auc"] for r in mine], "o-",
                     label=f"{size} px")  # fmt: skip
        by_epoch.plot([r["epoch"] for r in mine], [r["val_auc"] for r in mine], "o-",
                      label=f"{size} px")  # fmt: skip
    by_time.set(xlabel="CPU minutes", ylabel="hold-out AUC", title="AUC against CPU time")
    by_epoch.set(xlabel="epoch", title="AUC by epoch")
    by_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_time.legend(frameon=False)
    fig.savefig(HERE / "curve.png", dpi=120)
    print((HERE / "curve.md").read_text())


if __name__ == "__main__":
    main()
