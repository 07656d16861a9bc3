from lqer.quantum.ansatz import ANSATZES, Circuit
from lqer.quantum.layer import Execution, QuantumLayer, executing, quantum_layer
from lqer.quantum.noise import Noise
from lqer.quantum.simulator import expectations

__all__ = [
    "ANSATZES",
    "Circuit",
    "Execution",
    "Noise",
    "QuantumLayer",
    "executing",
    "expectations",
    "quantum_layer",
]
