"""Accuracy and AUC against input size: ResNet18 and LQER trained briefly on a P-ADSD subset.

Splits: a stratified subset of P-ADSD `train/`, of which a stratified 15% hold-out selects
the best epoch and drives the LR schedule; a stratified subset of P-ADSD `validation/` is the
test set, scored once per run. Every size uses the same images, seed and recipe (weights from
scratch, as no ImageNet download is possible here, hence a backbone LR of 1e-3 instead of the
fine-tuning 1e-4; the rest as in the configs), so the size is the only change. The table is
rewritten after every run.

    python benchmarks/image_size.py --out results/image_size_cpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

from lqer.config import load_config
from lqer.data.dataset import decode, hold_out, stratified_indices
from lqer.data.layout import list_folder
from lqer.io import write_text
from lqer.train import fit

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LQER_DATASETS", REPO.parent / "shared" / "datasets"))


def subset(folder: Path, n: int, seed: int) -> list:
    import torch

    items = list_folder(folder)
    labels = torch.tensor([label for _, label in items])
    return [items[i] for i in stratified_indices(labels, n / len(items), seed)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 112, 64])
    parser.add_argument("--models", nargs="+", default=["resnet18", "lqer"])
    parser.add_argument("--train", type=int, default=600, help="images from P-ADSD train/")
    parser.add_argument("--test", type=int, default=600, help="images from P-ADSD validation/")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr-backbone", type=float, default=1e-3, help="from scratch: 1e-3")
    parser.add_argument("--threads", type=int, help="CPU threads (1 on a busy machine)")
    parser.add_argument("--out", type=Path, default=Path("results/image_size_cpu.md"))
    args = parser.parse_args()

    root = DATASETS / "P-ADSD"
    train_items = subset(root / "train", args.train, args.seed)
    test_items = subset(root / "validation", args.test, args.seed)
    command = "python " + shlex.join(["benchmarks/image_size.py", *sys.argv[1:]])
    rows = []
    for size in args.sizes:
        train, val = hold_out(decode(train_items, size), 0.15, args.seed)
        data = {"train": train, "val": val, "test": decode(test_items, size)}
        for name in args.models:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = load_config(None, [
                    f"model.name={name}", "model.weights=none", f"data.image_size={size}",
                    f"train.epochs={args.epochs}", f"train.batch_size={args.batch_size}",
                    f"train.seed={args.seed}", "train.progress=false", f"out_dir={tmp}/run",
                    f"train.threads={args.threads}", f"train.lr_backbone={args.lr_backbone}",
                ])  # fmt: skip
                started = time.perf_counter()
                run = fit(cfg, data=data)
                seconds = time.perf_counter() - started
                test = json.loads((run / "test_metrics.json").read_text())
                history = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
            best = max(history, key=lambda r: r["val_auc"])
            rows.append(
                f"| {name} | {size} | {best['val_auc']:.3f} (epoch {best['epoch']}) | "
                f"{test['accuracy']:.3f} | {test['auc']:.3f} | {seconds / args.epochs:.0f} |"
            )
            write_text(args.out, report(args, command, len(train), len(val), data, rows))
            print(rows[-1], flush=True)


def report(args, command, n_train, n_val, data, rows) -> str:
    neg, pos = data["test"].counts
    return "\n".join([
        "# Accuracy and AUC against input size (CPU)", "",
        f"Command: `{command}`", "",
        f"Device: this machine's CPU ({os.cpu_count()} cores, shared with other jobs), "
        f"{time.strftime('%Y-%m-%d')}. Models from scratch, {args.epochs} epochs, batch "
        f"{args.batch_size}, seed {args.seed}, backbone LR {args.lr_backbone:g} (from scratch), "
        "the configs' head LR, weight decay, plateau schedule and class weighting.",
        "",
        f"Splits: training on a stratified {n_train}-image subset of P-ADSD `train/`; best "
        f"epoch and LR schedule chosen on a stratified {n_val}-image hold-out of that subset "
        f"(`selection AUC`); **test** = a stratified {len(data['test'])}-image subset of P-ADSD "
        f"`validation/` ({pos} positive, {neg} negative), scored once with the selected epoch.",
        "",
        "| model | input size | selection AUC (best epoch) | test accuracy | test AUC | s/epoch |",
        "|---|---|---|---|---|---|",
        *rows, "",
        "Brief runs on small subsets: differences of a few AUC points are within run-to-run "
        "noise here; the table shows the trend and the cost, not final accuracy.", "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
