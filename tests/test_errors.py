"""Library errors name the Python parameter; the command line shows the same words as flags."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import typer
from helpers import commands, run_lqer

import lqer
from lqer.errors import PARAMETER, LqerError, as_flags, flag

SOURCE = Path(lqer.__file__).parent
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def test_as_flags_spells_parameters_as_flags():
    assert as_flags("`out`: x exists; pass `skip_bad` or another `out`") == (
        "--out: x exists; pass --skip-bad or another --out"
    )
    assert as_flags("`fmt` must be voc") == "--format must be voc"
    assert as_flags("no parameter here, `Not-one` either") == "no parameter here, `Not-one` either"


def library_parameters() -> set[str]:
    """Every `parameter` in a string of a library module (not the CLI), docstrings aside."""
    found = set()
    for path in SOURCE.rglob("*.py"):
        if "cli" in path.relative_to(SOURCE).parts:
            continue
        tree = ast.parse(path.read_text())
        nodes = list(ast.walk(tree))
        documented = [n for n in nodes if isinstance(n, DOCUMENTED) and ast.get_docstring(n)]
        docstrings = {id(node.body[0].value) for node in documented}
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and id(node) not in docstrings:
                found |= set(PARAMETER.findall(text))
    return found


def test_every_parameter_a_message_names_is_a_flag():
    from lqer.cli import _register, app

    _register()
    flags = {opt for command in commands(typer.main.get_command(app)).values()
             for param in command.params for opt in param.opts}  # fmt: skip
    names = library_parameters()
    assert {"out", "resume", "skip_bad", "fmt", "weights"} <= names  # the walk sees messages
    missing = sorted(name for name in names if flag(name) not in flags)
    assert not missing, f"no command has a flag for {missing}"


def test_the_library_names_the_parameter_and_the_cli_the_flag(tmp_path):
    from lqer.data.splits import parse_fractions

    with pytest.raises(LqerError, match=r"^`fractions`: expected"):
        parse_fractions("train")
    result = run_lqer("train", "--resume", "--out", str(tmp_path / "nothing"))
    assert result.returncode == 2
    assert "--resume" in result.stderr and "`" not in result.stderr, result.stderr
