"""The one predictions file, written by `lqer predict`, a run's test_predictions.csv and a
comparison's predictions*.csv: a row per image with its path, split, model variant, known label,
probability of stenosis and the call at the threshold. A file that --skip-bad left out gets a
row with the call `skipped` and the reason, so that nobody has to guess which.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lqer.data.dataset import ImageSet
from lqer.errors import LqerError
from lqer.io import atomic_path, output_file

COLUMNS = ("file", "split", "model", "true_label", "prob_stenosis", "label", "reason")
CALLS = ("no_stenosis", "stenosis")  # the call for label 0 and 1
SKIPPED = "skipped"


@dataclass(frozen=True)
class Prediction:
    file: str
    split: str  # train, val or test; "" for files scored outside a split
    model: str  # the model variant, e.g. "lqer" or "lqer (q=zeros)"
    true_label: int | None  # 1 = stenosis; None where unknown
    prob: float | None  # probability of stenosis; None for a skipped file
    label: str  # the call: one of CALLS, or SKIPPED
    reason: str = ""  # why a file was skipped, or why the call may not apply to it


def prediction_rows(
    data: ImageSet, probs: np.ndarray, model: str, split: str = "", threshold: float = 0.5
) -> list[Prediction]:
    """A row per image of `data` (labels < 0 are unknown), then one per file it skipped."""
    rows = [
        Prediction(path, split, model, label if label >= 0 else None, float(prob),
                   CALLS[int(prob >= threshold)], data.notes.get(path, ""))
        for path, label, prob in zip(data.paths, data.labels.tolist(), probs, strict=True)
    ]  # fmt: skip
    rows += [Prediction(path, split, model, None, None, SKIPPED, why) for path, why in data.bad]
    return rows


def prediction_table(rows: list[Prediction], limit: int = 20) -> str:
    """The first `limit` rows as an aligned text table, for a terminal."""
    lines = [("file", "P(stenosis)", "call", "true label", "note")]
    for r in rows[:limit]:
        name = Path(r.file)
        shown = f"{name.parent.name}/{name.name}" if name.parent.name else name.name
        truth = "" if r.true_label is None else CALLS[r.true_label]
        prob = "" if r.prob is None else f"{r.prob:.3f}"
        lines.append((shown, prob, r.label, truth, r.reason[:60]))
    widths = [max(len(line[k]) for line in lines) for k in range(5)]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]  # fmt: skip
    if len(rows) > limit:
        text.append(f"... and {len(rows) - limit} more")
    return "\n".join(text)


def write_predictions(path: str | Path, rows: Iterable[Prediction], loose: bool = False) -> None:
    """`loose`: `path` lies in a folder lqer does not own (`lqer.io.output_file`)."""
    with (output_file if loose else atomic_path)(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for r in rows:
            label = "" if r.true_label is None else r.true_label
            prob = "" if r.prob is None else f"{r.prob:.7f}"
            writer.writerow([r.file, r.split, r.model, label, prob, r.label, r.reason])


def read_predictions(path: str | Path) -> list[Prediction]:
    """The rows of a predictions file; a file of another format is an error naming it."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise LqerError(
                f"{path}: not a predictions file of this lqer (columns {','.join(COLUMNS)}); "
                "delete it to score again"
            )
        return [
            Prediction(r["file"], r["split"], r["model"],
                       int(r["true_label"]) if r["true_label"] else None,
                       float(r["prob_stenosis"]) if r["prob_stenosis"] else None,
                       r["label"], r["reason"])
            for r in reader
        ]  # fmt: skip
