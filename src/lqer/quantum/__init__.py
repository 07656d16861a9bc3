"""Circuits (`Circuit`, `ANSATZES`), how they run (`Execution`, `Noise`) and the torch layer."""

from typing import TYPE_CHECKING

from lqer.lazy import exports

_NAMES = {
    "ANSATZES": "lqer.quantum.ansatz",
    "Circuit": "lqer.quantum.ansatz",
    "Execution": "lqer.quantum.execution",
    "Noise": "lqer.quantum.execution",
    "QuantumLayer": "lqer.quantum.layer",
    "executing": "lqer.quantum.layer",
    "expectations": "lqer.quantum.simulator",
}
__all__ = ["ANSATZES", "Circuit", "Execution", "Noise", "QuantumLayer", "executing", "expectations"]
__getattr__ = exports(__name__, _NAMES)

if TYPE_CHECKING:
    from lqer.quantum.ansatz import ANSATZES, Circuit
    from lqer.quantum.execution import Execution, Noise
    from lqer.quantum.layer import QuantumLayer, executing
    from lqer.quantum.simulator import expectations
