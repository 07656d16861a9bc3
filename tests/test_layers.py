"""Data flows one way: no module imports a layer above its own, not even inside a function."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lqer"
ABOVE = {
    "data": ("lqer.models", "lqer.quantum", "lqer.train", "lqer.eval", "lqer.experiments",
             "lqer.cli"),
    "models": ("lqer.train", "lqer.eval", "lqer.experiments", "lqer.cli"),
    "quantum": ("lqer.train", "lqer.eval", "lqer.experiments", "lqer.cli"),
    "eval": ("lqer.train", "lqer.experiments", "lqer.cli"),
    "train": ("lqer.experiments", "lqer.cli"),
    "experiments": ("lqer.cli",),
}  # fmt: skip


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_no_import_from_a_layer_above(layer):
    offending = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / layer).rglob("*.py"))
        for name in imported(path)
        if name.startswith(ABOVE[layer])
    ]
    assert not offending, offending
