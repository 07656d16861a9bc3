"""Packages that name their parts without importing them: `import lqer.quantum` (or the
configuration, which reads the circuit's choices) must not load PyTorch before a model runs."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def exports(package: str, names: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` that imports `names[name]` (a module path) on first use."""

    def __getattr__(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(names[name]), name)

    return __getattr__
