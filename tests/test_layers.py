"""Data flows one way: every module of lqer, read with its imports inside functions and under
TYPE_CHECKING, imports only from its own layer or from layers below it, so there is no circle.

The configuration describes and the builders take plain arguments: the few vocabularies that
the configuration names (the circuit's choices, the list of models) sit below it and import no
PyTorch, and everything that runs a model sits above it.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lqer"
LAYERS = [
    ("lqer", "lqer.errors", "lqer.lazy", "lqer.logs", "lqer.guarded_yaml", "lqer.io", "lqer.device",
     "lqer.threshold"),
    ("lqer.quantum.ansatz", "lqer.quantum.gates", "lqer.quantum.execution",
     "lqer.registry"),
    ("lqer.sections", "lqer.config", "lqer.detection_config"),
    ("lqer.data", "lqer.sample"),
    ("lqer.quantum",),
    ("lqer.models", "lqer.weights"),
    ("lqer.eval",),
    ("lqer.train",),
    ("lqer.experiments",),
    ("lqer.serve",),
    ("lqer.api", "lqer.cli", "lqer.__main__"),
]  # fmt: skip
PUBLIC_FACES = {"lqer"}  # `import lqer` names the user's verbs lazily, from every layer


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def layer(module: str) -> int:
    """The layer of the longest prefix that names `module` (lqer.quantum.ansatz before
    lqer.quantum)."""
    best, found = -1, None
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, found = len(name), index
    assert found is not None, f"{module} is in no layer of tests/test_layers.py"
    return found


def imported(module: str) -> set[str]:
    """The lqer modules `module` imports, anywhere in its text."""
    names = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            parts = {f"{base}.{a.name}" for a in node.names} & MODULES.keys()
            names |= parts or {base}  # `from lqer.train import loop` needs only the module
    return {n for n in names if n in MODULES and n != module}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_from_a_layer_above(module):
    if module in PUBLIC_FACES:
        return
    above = [name for name in imported(module) if layer(name) > layer(module)]
    assert not above, f"{module} (layer {layer(module)}) imports {above}"


def test_no_circle_of_imports():
    """Tarjan's strongly connected components over every module's imports."""
    graph = {m: imported(m) for m in MODULES if m not in PUBLIC_FACES}
    graph = {m: {n for n in names if n in graph} for m, names in graph.items()}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, circles
