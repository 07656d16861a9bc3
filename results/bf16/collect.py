"""bf16 against float32 at 64 px: best hold-out AUC and seconds per epoch, per seed, from the
runs that results/bf16/run.sh made. Writes results.md beside this file.

    python results/bf16/collect.py [--cpu "Intel Xeon (AMX), 1 thread"]
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def runs() -> dict[tuple[str, int], list[dict]]:
    found = {}
    for history in sorted(HERE.glob("*-seed*/history.csv")):
        precision, seed = history.parent.name.split("-seed")
        with open(history, newline="") as f:
            found[precision, int(seed)] = list(csv.DictReader(f))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", default="Intel Xeon with AMX, 1 thread, second core busy")
    args = parser.parse_args()
    found = runs()
    lines = [
        "# bf16 autocast against float32 (issue 12)", "",
        "LQER from scratch at 64 px (where training picks bf16 and channels_last on a CPU with "
        "AMX) and the same runs with `train.amp=false`, on a stratified 8,000-patch subset of "
        "P-ADSD train/: 6,800 to train, AUC on the 1,200 held out; the published validation/ "
        f"split was not read. 5 epochs. CPU: {args.cpu}. Made by `bash results/bf16/run.sh`. "
        "Seconds per epoch are not a speed comparison: other jobs shared the CPU and the runs "
        "were paused now and then for benchmarks (`benchmarks/train_throughput.py` measures "
        "speed).",
        "", "| precision | seed | best hold-out AUC | AUC per epoch | s per epoch |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    best = {}
    for (precision, seed), history in sorted(found.items()):
        aucs = [float(r["val_auc"]) for r in history]
        seconds = statistics.median(float(r["epoch_time"]) for r in history)
        best.setdefault(precision, []).append(max(aucs))
        lines.append(f"| {precision} | {seed} | {max(aucs):.4f} | "
                     f"{', '.join(f'{a:.3f}' for a in aucs)} | {seconds:.0f} |")  # fmt: skip
    if len(best) == 2:
        means = {p: statistics.mean(v) for p, v in best.items()}
        spread = [abs(a - b) for a, b in zip(best["bf16"], best["bf16"][1:], strict=False)]
        spread += [abs(a - b) for a, b in zip(best["fp32"], best["fp32"][1:], strict=False)]
        lines += ["", f"Mean best hold-out AUC: bf16 {means['bf16']:.4f}, float32 "
                  f"{means['fp32']:.4f}, difference {means['bf16'] - means['fp32']:+.4f}; the "
                  f"seeds of one precision differ by {max(spread, default=0):.4f}."]  # fmt: skip
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
