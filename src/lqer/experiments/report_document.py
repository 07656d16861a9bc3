"""A report as a list of blocks (heading, paragraph, table, preformatted text, figure),
rendered as Markdown and as one self-contained HTML page, so the two cannot disagree."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from lqer.experiments.tables import markdown_table


@dataclass
class Report:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str):
        self.blocks.append(("h2", text))

    def text(self, text: str):
        self.blocks.append(("p", text))

    def pre(self, text: str):
        self.blocks.append(("pre", text))

    def table(self, header: list[str], rows: list[list]):
        self.blocks.append(("table", header, rows))

    def figure(self, png: Path, caption: str):
        self.blocks.append(("figure", png, caption))


def to_markdown(report: Report, root: Path) -> str:
    lines = [f"# {report.title}", ""]
    for kind, *args in report.blocks:
        if kind == "h2":
            lines += [f"## {args[0]}", ""]
        elif kind == "p":
            lines += [args[0], ""]
        elif kind == "pre":
            lines += ["```", args[0].rstrip(), "```", ""]
        elif kind == "table":
            lines += [*markdown_table(*args), ""]
        elif kind == "figure":
            png, caption = args
            lines += [f"![{caption}]({png.relative_to(root).as_posix()})", "", f"*{caption}*", ""]
    return "\n".join(lines)


CSS = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}
td,th{border:1px solid #999;padding:0.25em 0.5em;text-align:left}
th{background:#eee} img{max-width:100%} pre{background:#f5f5f5;padding:1em;overflow:auto}
figcaption{font-style:italic;margin-bottom:2em}"""


def to_html(report: Report) -> str:
    title = html.escape(report.title)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body><h1>{title}</h1>"
    ]
    for kind, *args in report.blocks:
        if kind == "h2":
            parts.append(f"<h2>{html.escape(args[0])}</h2>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(args[0])}</p>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(args[0])}</pre>")
        elif kind == "table":
            header, rows = args
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in rows
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        elif kind == "figure":
            png, caption = args
            data = base64.b64encode(png.read_bytes()).decode()
            parts.append(
                f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(caption)}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
