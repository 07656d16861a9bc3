"""The one Markdown table, for results.md, the report's Markdown twin and noise_sweep.md."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence, rows: Iterable[Sequence]) -> list[str]:
    """Its lines: the header, the rule under it and a line per row."""

    def line(cells: Sequence) -> str:
        return "| " + " | ".join(map(str, cells)) + " |"

    return [line(header), "|---" * len(header) + "|", *map(line, rows)]
