"""MkDocs hook: pages that come from elsewhere, so that the site and its sources cannot disagree.

- `<!-- lqer commands -->`: every command's own `--help`.
- `<!-- lqer settings -->`: every configuration setting, its default, its allowed values and
  the comment beside it in `lqer/config.py` or `lqer/detection_config.py`.
- `<!-- include FILE [SECTION] -->`: a file of the repository (the README's results, the model
  card), or the part of it between `<!-- --8<-- [start:SECTION] -->` and its end mark. Links to
  files that are not pages of the site name the file instead.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = "<!-- lqer commands -->"
SETTINGS = "<!-- lqer settings -->"
FIELD = re.compile(r"    (\w+): ")  # a field of a section's class body
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


def settings() -> str:
    from lqer.config import ExperimentConfig
    from lqer.detection_config import DetectionConfig

    parts = []
    for title, config in (("An experiment: `lqer train`, `lqer compare`", ExperimentConfig),
                          ("A detector: `lqer detector train`", DetectionConfig)):  # fmt: skip
        parts.append(f"## {title}\n")
        parts += [settings_table(prefix, section) for prefix, section in sections(config)]
    return "\n".join(parts)


def is_section(field) -> bool:
    from lqer.sections import Section

    return isinstance(field.annotation, type) and issubclass(field.annotation, Section)


def sections(config, prefix: str = ""):
    """(dotted prefix, section class), outer before inner."""
    yield prefix, config
    for name, field in config.model_fields.items():
        if is_section(field):
            yield from sections(field.annotation, f"{prefix}{name}.")


def settings_table(prefix: str, section) -> str:
    notes = field_comments(section)
    rows = ["| setting | default | allowed | what it does |", "|---|---|---|---|"]
    for name, field in section.model_fields.items():
        if is_section(field):
            continue  # a section of its own
        allowed = typing.get_args(field.annotation) if typing.get_origin(field.annotation) is \
            typing.Literal else ()  # fmt: skip
        allowed = ", ".join(f"`{v}`" for v in allowed) or field.description or ""
        rows.append(f"| `{prefix}{name}` | `{shown_default(field.default)}` | {allowed} | "
                    f"{notes.get(name, '')} |")  # fmt: skip
    heading = f"### `{prefix.rstrip('.')}`" if prefix else "### top level"
    return f"{heading}\n\n" + "\n".join(rows) + "\n"


def shown_default(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if value != "" else '""'


def field_comments(section) -> dict[str, str]:
    """The comment lines just above each field and the comment at the end of its line."""
    notes, above = {}, []
    for line in inspect.getsourcelines(section)[0]:
        text = line.strip()
        if text.startswith("#"):
            above.append(text.lstrip("#").strip())
            continue
        field = FIELD.match(line)
        if field and not text.startswith(("def ", "@", "prefix", "model_config")):
            inline = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            inline = "" if inline.startswith(("fmt:", "noqa")) else inline
            notes[field.group(1)] = " ".join([*above, inline]).strip().replace("|", "\\|")
        above = []
    return notes


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
    if SETTINGS in markdown:
        markdown = markdown.replace(SETTINGS, settings())
    return INCLUDE.sub(include, markdown)
