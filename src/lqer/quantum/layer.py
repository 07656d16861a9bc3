"""`QuantumLayer`: the circuit as a torch module, in the spirit of PennyLane's TorchLayer."""

from __future__ import annotations

import torch
from torch import nn

from lqer.quantum import simulator
from lqer.quantum.simulator import Circuit


class QuantumLayer(nn.Module):
    """Maps rotation angles (B, n) to Pauli-Z expectations (B, n).

    The same angles are encoded again in every layer (data re-uploading). The circuit runs in
    float32 or float64 even under autocast: low precision buys nothing at 2^n amplitudes.
    """

    def __init__(self, circuit: Circuit, backend: str = "native"):
        super().__init__()
        self.circuit = circuit
        self.backend = backend
        self.weights = nn.Parameter(simulator.init_weights(circuit))

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        with torch.autocast(angles.device.type, enabled=False):
            angles = angles.to(self.weights.dtype)
            per_layer = angles.unsqueeze(1).expand(-1, self.circuit.n_layers, -1)
            if self.backend == "native":
                return simulator.expectations(self.circuit, per_layer, self.weights)
            from lqer.quantum.pennylane_circuit import pennylane_expectations

            device = self.backend.partition(":")[2] or "default.qubit"
            return pennylane_expectations(self.circuit, per_layer, self.weights, device)

    def extra_repr(self) -> str:
        c = self.circuit
        return (
            f"n_qubits={c.n_qubits}, n_layers={c.n_layers}, encoding={c.encoding}, "
            f"rotation={c.rotation}, entangler={c.entangler}, backend={self.backend}"
        )
