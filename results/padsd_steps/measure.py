"""Issue 24, part 3: what each step gives on P-ADSD. For every model given (shipped weights or
best.pt), and for the mean of their probabilities (a seed ensemble), with and without the
test-time flip: AUC on P-ADSD validation/ (the test split), and F1, sensitivity and specificity
there at the threshold that maximises F1 on the hold-out of train/ that chose the first model's
epoch. Appends a row per line to results/padsd_steps/steps.csv with the CPU that ran it.

    python results/padsd_steps/measure.py STEP MODEL [MODEL ...]
    e.g. python results/padsd_steps/measure.py shipped lqer-padsd

An ensemble's hold-out is the first model's: members of other seeds trained on part of it, so
its threshold is chosen on images some members saw (its AUC on the test split is not affected).
"""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import numpy as np

from lqer import load
from lqer.data.dataset import load_experiment
from lqer.device import cpu_name
from lqer.eval.evaluate import predict_proba
from lqer.eval.metrics import best_f1_threshold, binary_metrics

HERE = Path(__file__).parent
ROOT = Path("../shared/datasets/P-ADSD")
COLUMNS = ["step", "models", "flip", "auc", "f1", "sensitivity", "specificity", "threshold",
           "test", "cpu"]  # fmt: skip


def scores(models, data: dict[int, dict], flip: bool) -> dict[str, np.ndarray]:
    """Mean stenosis probability over `models` on the hold-out and the test split, each model
    on the images decoded at its own input size."""

    def proba(m, part):
        images = data[m.config.data.image_size][part]
        return predict_proba(m.model, images.images, images.size, flip=flip)

    return {part: np.mean([proba(m, part) for m in models], axis=0) for part in ("val", "test")}


def main(step: str, sources: list[str]) -> None:
    logging.getLogger("lqer").setLevel(logging.WARNING)  # no progress bars in the log
    models = [load(s) for s in sources]
    first = models[0].config
    data = {}  # the same split at every input size: it depends on the labels and the seed only
    for size in {m.config.data.image_size for m in models}:
        dc = first.data.model_copy(update={"root": str(ROOT), "test_split": "validation",
                                           "image_size": size})  # fmt: skip
        data[size] = load_experiment(dc, first.train.seed)
    part = data[first.data.image_size]
    assert all(d["val"].paths == part["val"].paths for d in data.values()), "hold-outs differ"
    labels = {name: part[name].labels.numpy() for name in ("val", "test")}
    rows = []
    for flip in (False, True):
        probs = scores(models, data, flip)
        threshold = best_f1_threshold(labels["val"], probs["val"])
        test = binary_metrics(labels["test"], probs["test"], threshold)
        rows.append({"step": step, "models": " ".join(sources), "flip": flip,
                     **{k: round(test[k], 4) for k in ("auc", "f1", "sensitivity",
                                                       "specificity")},
                     "threshold": round(threshold, 4), "test": "P-ADSD validation/",
                     "cpu": cpu_name()})  # fmt: skip
        print(rows[-1])
    path = HERE / "steps.csv"
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    main(sys.argv[1], sys.argv[2:])
