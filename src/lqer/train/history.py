"""A run's per-epoch log: CSV, JSON lines and, if asked, TensorBoard scalars."""

from __future__ import annotations

import json
import math
from pathlib import Path

from lqer.io import write_text


class History:
    """Per-epoch log written as CSV and as JSON lines; rewritten whole, atomically, each epoch.

    last.pt carries the rows too, so a run killed between its checkpoint and its log resumes
    with the log that matches the checkpoint."""

    def __init__(self, out_dir: Path, rows: list[dict] | None = None, tensorboard: bool = False):
        self.out_dir = out_dir
        self.rows = rows or []
        self.tensorboard = tensorboard

    @classmethod
    def resume(cls, out_dir: Path, epochs_done: int, tensorboard: bool = False) -> History:
        path = out_dir / "history.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return cls(out_dir, [r for r in rows if r["epoch"] <= epochs_done], tensorboard)

    def write(self) -> None:
        if not self.rows:
            return
        row = self.rows[-1]
        if self.tensorboard:
            write_scalars(self.out_dir / "tensorboard", row)
        write_text(self.out_dir / "history.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
        lines = [",".join(row)]
        lines += [",".join(_fmt(r.get(k)) for k in row) for r in self.rows]
        write_text(self.out_dir / "history.csv", "\n".join(lines) + "\n")


def write_scalars(folder: Path, row: dict) -> None:
    """One epoch's numbers as TensorBoard scalars (`tensorboard --logdir RUN/tensorboard`).
    A resumed run appends; TensorBoard shows the newest value of a repeated epoch."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as writer:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
