"""A comparison folder's files as `lqer report` reads them, checked before anything is drawn.

`lqer compare` writes comparison.json and the tables summary.csv, contrasts.csv and
results.csv. A file cut short, edited by hand or left by an older version would otherwise fail
halfway through the figures with a KeyError or a StopIteration; here it is one line naming the
file and what it lacks.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lqer.errors import LqerError
from lqer.experiments import tables
from lqer.guarded_yaml import first_line, shown

# What the report reads of each table: (text columns, number columns).
TABLES = {
    "summary.csv": (("model", "rule", "metric"), ("n_seeds", "mean", "sd", "low", "high")),
    "contrasts.csv": (
        ("model", "p_values"),
        ("n_seeds", "auc_difference", "low", "high", "seeds_p_below_0.05"),
    ),
    "results.csv": (("model", "rule"), ("seed", "threshold")),
}
# What it reads of comparison.json, of each of its runs and of each split of its data.
MANIFEST = {"rules": list, "test_split": str, "n_boot": int, "data": dict, "runs": list}
RUN = ("model", "seed", "status", "run")
SPLIT = ("n", "positives", "prevalence", "sha256")


@dataclass
class Comparison:
    manifest: dict[str, Any]
    summary: list[dict]
    contrasts: list[dict]
    results: list[dict]


def read_comparison(folder: Path) -> Comparison:
    """comparison.json and the three tables, or an LqerError naming the file at fault."""
    path = folder / "comparison.json"
    again = f"run the comparison into `out` {folder} again"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeError, ValueError) as e:
        raise LqerError(f"{path}: not readable JSON ({first_line(e)})") from None
    if not isinstance(manifest, dict):
        raise LqerError(f"{path}: not the manifest of a comparison; {again}")
    for key, kind in MANIFEST.items():
        if not isinstance(manifest.get(key), kind):
            raise LqerError(f"{path}: no {key!r} ({kind.__name__}); {again}")
    held = manifest.get("tables", manifest)  # older files: what was asked
    if not manifest["rules"] or not all(isinstance(r, str) for r in manifest["rules"]):
        raise LqerError(f"{path}: 'rules' names no threshold rule; {again}")
    if not isinstance(held, dict) or not all(
        isinstance(held.get(k), list) for k in ("models", "seeds")
    ):
        raise LqerError(f"{path}: no 'models' and 'seeds' of its tables; {again}")
    if not isinstance(manifest.get("devices") or manifest.get("device"), (list, str)):
        raise LqerError(f"{path}: no 'device'; {again}")
    for run in manifest["runs"]:
        if not isinstance(run, dict) or any(key not in run for key in RUN):
            raise LqerError(f"{path}: a run without {', '.join(RUN)}: {shown(run)}; {again}")
    for seed, info in manifest["data"].items():
        splits = info.get("splits") if isinstance(info, dict) else None
        if not isinstance(splits, dict) or not all(
            isinstance(s, dict) and all(k in s for k in SPLIT) for s in splits.values()
        ):
            raise LqerError(f"{path}: the data of seed {seed} lacks {', '.join(SPLIT)}; {again}")
    tables = {name: _table(folder / name, *columns, again) for name, columns in TABLES.items()}
    finished = [r for r in manifest["runs"] if r.get("in_tables", r["status"] != "failed")]
    for name in ("summary.csv", "results.csv"):
        if finished and not tables[name]:
            raise LqerError(f"{folder / name}: empty, though {path} lists finished runs; {again}")
    return Comparison(manifest, tables["summary.csv"], tables["contrasts.csv"],
                      tables["results.csv"])  # fmt: skip


def _table(path: Path, text: tuple[str, ...], numbers: tuple[str, ...], again: str) -> list:
    if not path.is_file():
        raise LqerError(f"{path}: missing; {again}")
    try:
        rows = tables.read_csv(path)
    except TypeError:  # a short row gives None to the parser
        raise LqerError(f"{path}: a row has fewer fields than the header; {again}") from None
    except (ValueError, csv.Error) as e:
        raise LqerError(f"{path}: not a table lqer compare wrote ({first_line(e)})") from None
    for line, row in enumerate(rows, 2):
        missing = [column for column in (*text, *numbers) if column not in row]
        if missing:
            raise LqerError(f"{path}: no column {', '.join(missing)}; {again}")
        bad = [
            c for c in numbers if isinstance(row[c], bool) or not isinstance(row[c], int | float)
        ]
        if bad:
            raise LqerError(f"{path}:{line}: {bad[0]} is not a number, got {shown(row[bad[0]])}")
    return rows
