"""The same circuit in PennyLane: the reference for tests and the `pennylane[:device]` backend."""

from __future__ import annotations

import torch

from lqer.errors import LqerError
from lqer.quantum.simulator import Circuit


def import_pennylane():
    try:
        import pennylane as qml
    except ImportError:
        raise LqerError(
            "the pennylane backend needs PennyLane: pip install 'lqer[pennylane]'"
        ) from None
    return qml


def make_qnode(circuit: Circuit, device: str = "default.qubit", diff_method: str = "backprop"):
    """A QNode f(angles (B, L, n), weights (L, n, k)) -> (n, B) Pauli-Z expectations."""
    qml = import_pennylane()
    try:
        dev = qml.device(device, wires=circuit.n_qubits)
    except Exception as e:  # plugins raise many kinds of errors
        raise LqerError(f"PennyLane device {device!r} is not available: {e}") from None
    encode = {"ry": qml.RY, "rx": qml.RX}[circuit.encoding]

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def qnode(angles, weights):
        for layer in range(circuit.n_layers):
            for wire in range(circuit.n_qubits):
                encode(angles[..., layer, wire], wires=wire)
            for wire in range(circuit.n_qubits):
                if circuit.rotation == "rot":
                    qml.Rot(*(weights[layer, wire, j] for j in range(3)), wires=wire)
                else:
                    qml.RY(weights[layer, wire, 0], wires=wire)
            for control, target in circuit.cnots:
                qml.CNOT(wires=[control, target])
        return [qml.expval(qml.PauliZ(w)) for w in range(circuit.n_qubits)]

    return qnode


def pennylane_expectations(
    circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor, device: str = "default.qubit"
) -> torch.Tensor:
    """(B, n) expectations computed by PennyLane."""
    diff_method = "backprop" if device == "default.qubit" else "best"
    out = make_qnode(circuit, device, diff_method)(angles, weights)
    return torch.stack(list(out), -1).to(angles.dtype)
