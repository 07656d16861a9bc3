"""MkDocs hook: pages that come from elsewhere, so that the site and its sources cannot disagree.

- `<!-- lqer commands -->`: every command's own `--help`.
- `<!-- include FILE [SECTION] -->`: a file of the repository (the README's results, the model
  card), or the part of it between `<!-- --8<-- [start:SECTION] -->` and its end mark. Links to
  files that are not pages of the site name the file instead.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = "<!-- lqer commands -->"
INCLUDE = re.compile(r"<!-- include (\S+)(?: (\w+))? -->")
LINK = re.compile(r"\[([^\]]+)\]\(([^)#\s]+)\)")
PAGES = {"MODEL_CARD.md": "model-card.md", "docs/reliability.md": "reliability.md"}


def command_paths() -> list[list[str]]:
    import typer.main

    from lqer.cli import _register, app

    _register()
    paths = []
    for name, command in typer.main.get_command(app).commands.items():
        paths.append([name])
        paths += [[name, sub] for sub in getattr(command, "commands", {})]
    return paths


def reference() -> str:
    from typer.testing import CliRunner

    from lqer.cli import app

    parts = []
    for words in command_paths():
        done = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "100"}, prog_name="lqer")
        parts.append(f"### `lqer {' '.join(words)}`\n\n```text\n{done.output.strip()}\n```\n")
    return "\n".join(parts)


def include(match: re.Match) -> str:
    name, section = match.groups()
    text = (REPO / name).read_text()
    if section:
        start = text.index(f"<!-- --8<-- [start:{section}] -->")
        text = text[start : text.index(f"<!-- --8<-- [end:{section}] -->")]
    return LINK.sub(repository_link, text)


def repository_link(match: re.Match) -> str:
    text, target = match.groups()
    if target in PAGES:
        return f"[{text}]({PAGES[target]})"
    if "://" in target or not (REPO / target).exists():
        return match.group(0)
    return f"{text} (`{target}` in the repository)"


def on_page_markdown(markdown: str, **_) -> str:
    if COMMANDS in markdown:
        markdown = markdown.replace(COMMANDS, reference())
    return INCLUDE.sub(include, markdown)
