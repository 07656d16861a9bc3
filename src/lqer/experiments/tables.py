"""Tables of a comparison: its CSV files read back, and the one Markdown table (results.md, the
report's Markdown twin, noise_sweep.md) with the cells of the summary and contrast tables."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from lqer.experiments.variants import METRICS, REFERENCE


def markdown_table(header: Sequence, rows: Iterable[Sequence]) -> list[str]:
    """Its lines: the header, the rule under it and a line per row."""

    def line(cells: Sequence) -> str:
        return "| " + " | ".join(map(str, cells)) + " |"

    return [line(header), "|---" * len(header) + "|", *map(line, rows)]


def read_csv(path: Path) -> list[dict]:
    """Rows of one of the CSVs above, numbers parsed."""

    def parse(value: str):
        try:
            return float(value) if any(c in value for c in ".en") else int(value)
        except ValueError:
            return value

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def fmt_cell(mean: float, sd: float, low: float, high: float) -> str:
    """`mean ± sd [low, high]`; "undefined" when some seed's value is (e.g. PPV with no
    positive calls)."""
    if np.isnan(mean):
        return "undefined"
    spread = "" if np.isnan(sd) else f" ± {sd:.3f}"
    interval = "" if np.isnan(low) else f" [{low:.3f}, {high:.3f}]"
    return f"{mean:.3f}{spread}{interval}"


def summary_table(summary: list[dict], rule: str) -> tuple[list[str], list[list]]:
    """Header and rows of the metrics under one rule: mean ± sd [95% bootstrap interval]."""
    cells = {(r["model"], r["rule"], r["metric"]): r for r in summary}
    rows = []
    for model in dict.fromkeys(r["model"] for r in summary):
        row = [cells.get((model, rule, m)) for m in METRICS]
        if row[0] is not None:
            text = [fmt_cell(c["mean"], c["sd"], c["low"], c["high"]) for c in row]
            rows.append([model, row[0]["n_seeds"], *text])
    return ["model", "seeds", *(m.upper() for m in METRICS)], rows


def contrast_table(contrast: list[dict]) -> tuple[list[str], list[list]]:
    """Header and rows of the paired DeLong comparison of the reference with each model."""
    header = [
        "model", "seeds", f"AUC({REFERENCE}) - AUC(model) [95% bootstrap]",
        "seeds with p < 0.05", "DeLong p per seed", "pooled p (Stouffer)",
    ]  # fmt: skip
    rows = [
        [c["model"], c["n_seeds"], fmt_cell(c["auc_difference"], np.nan, c["low"], c["high"]),
         c["seeds_p_below_0.05"], c["p_values"], f"{c.get('p_pooled', np.nan):.3g}"]
        for c in contrast
    ]  # fmt: skip
    return header, rows


def markdown_tables(summary: list[dict], contrast: list[dict]) -> str:
    """Metrics per rule and the DeLong comparison, for results.md."""
    lines = []
    for rule in dict.fromkeys(r["rule"] for r in summary):
        lines += [f"**Test split, threshold: {rule}**", ""]
        lines += [*markdown_table(*summary_table(summary, rule)), ""]
    if contrast:
        lines += [f"**Paired DeLong test, {REFERENCE} against each model (test split)**", ""]
        lines += [*markdown_table(*contrast_table(contrast)), ""]
    return "\n".join(lines)
