from lqer.quantum.layer import Execution, QuantumLayer, executing, quantum_layer
from lqer.quantum.noise import Noise
from lqer.quantum.simulator import Circuit, expectations

__all__ = [
    "Circuit",
    "Execution",
    "Noise",
    "QuantumLayer",
    "executing",
    "expectations",
    "quantum_layer",
]
