"""The same circuit in PennyLane: the reference for tests and the `pennylane[:device]` backend.

PennyLane is an optional extra (`pip install 'lqer[pennylane]'`), imported only when used.
"""

from __future__ import annotations

import torch

from lqer.errors import LqerError
from lqer.quantum.noise import NO_NOISE, Noise
from lqer.quantum.simulator import Circuit


def import_pennylane():
    try:
        import pennylane as qml
    except ImportError:
        raise LqerError(
            "the pennylane backend needs PennyLane: pip install 'lqer[pennylane]'"
        ) from None
    return qml


def device_name(backend: str) -> str:
    """`pennylane` -> default.qubit, `pennylane:lightning.qubit` -> lightning.qubit."""
    name, _, device = backend.partition(":")
    if name != "pennylane":
        raise LqerError(f"quantum backend must be native or pennylane[:DEVICE], got {backend!r}")
    return device or "default.qubit"


def make_device(name: str, n_qubits: int, seed: int | None = None):
    qml = import_pennylane()
    try:
        try:
            return qml.device(name, wires=n_qubits, seed=seed)
        except TypeError:  # a plugin without a seed argument
            return qml.device(name, wires=n_qubits)
    except Exception as e:  # plugins raise many kinds of errors
        raise LqerError(f"PennyLane device {name!r} is not available: {e}") from None


def make_qnode(
    circuit: Circuit,
    device: str = "default.qubit",
    diff_method: str = "backprop",
    noise: Noise = NO_NOISE,
    shots: int | None = None,
    seed: int | None = None,
):
    """A QNode f(angles (B, L, n), weights (L, n, k)) -> n Pauli-Z expectations of shape (B,).

    Noise is inserted as channels after each gate layer and as bit flips before measurement,
    which needs a mixed-state device such as default.mixed.
    """
    qml = import_pennylane()
    dev = make_device(device, circuit.n_qubits, seed)
    encode = {"ry": qml.RY, "rx": qml.RX}[circuit.encoding]
    wires = range(circuit.n_qubits)

    def gate_noise():
        for wire in wires:
            if noise.depolarizing > 0:  # PennyLane's p is 3/4 of ours, see `Noise`
                qml.DepolarizingChannel(0.75 * noise.depolarizing, wires=wire)
            if noise.amplitude_damping > 0:
                qml.AmplitudeDamping(noise.amplitude_damping, wires=wire)

    @qml.qnode(dev, interface="torch", diff_method=diff_method, shots=shots)
    def qnode(angles, weights):
        for layer in range(circuit.n_layers):
            for wire in wires:
                encode(angles[..., layer, wire], wires=wire)
            gate_noise()
            for wire in wires:
                if circuit.rotation == "rot":
                    qml.Rot(*(weights[layer, wire, j] for j in range(3)), wires=wire)
                else:
                    qml.RY(weights[layer, wire, 0], wires=wire)
            gate_noise()
            for control, target in circuit.cnots:
                qml.CNOT(wires=[control, target])
            if circuit.cnots:
                gate_noise()
        if noise.readout_error > 0:
            for wire in wires:
                qml.BitFlip(noise.readout_error, wires=wire)
        return [qml.expval(qml.PauliZ(w)) for w in wires]

    return qnode


def stack_outputs(out, dtype: torch.dtype) -> torch.Tensor:
    """PennyLane's n results of shape (B,) as one (B, n) tensor."""
    return torch.stack([torch.as_tensor(o) for o in out], -1).to(dtype)


def pennylane_expectations(
    circuit: Circuit,
    angles: torch.Tensor,
    weights: torch.Tensor,
    device: str = "default.qubit",
    noise: Noise = NO_NOISE,
) -> torch.Tensor:
    """(B, n) exact expectations computed by PennyLane."""
    diff_method = "backprop" if device in ("default.qubit", "default.mixed") else "best"
    out = make_qnode(circuit, device, diff_method, noise)(angles, weights)
    return stack_outputs(out, angles.dtype)
