from lqer.quantum.layer import QuantumLayer
from lqer.quantum.simulator import Circuit, expectations

__all__ = ["Circuit", "QuantumLayer", "expectations"]
