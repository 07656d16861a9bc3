"""The same gate list in PennyLane: the reference for tests and the `pennylane[:device]` backend.

PennyLane is an optional extra (`pip install 'lqer[pennylane]'`), imported only when used.
"""

from __future__ import annotations

import itertools
import math

import torch

from lqer.errors import LqerError
from lqer.quantum.ansatz import Circuit, Input, Weight
from lqer.quantum.execution import NO_NOISE, Noise


def import_pennylane():
    try:
        import pennylane as qml
    except ImportError:
        raise LqerError(
            "the pennylane backend needs PennyLane: pip install 'lqer[pennylane]'"
        ) from None
    return qml


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
    per_gate: bool = False,
):
    """A QNode f(angles, weights (L, n, k)) -> the circuit's readout, for angles as uploads
    (B, U, n), or with `per_gate` as the angle of every input gate (B, G).

    Noise is inserted as channels after each gate layer and as bit flips before measurement,
    which needs a mixed-state device such as default.mixed.
    """
    qml = import_pennylane()
    dev = make_device(device, circuit.n_qubits, seed)
    wires = range(circuit.n_qubits)

    def gate_noise():
        for wire in wires:
            if noise.depolarizing > 0:  # PennyLane's p is 3/4 of ours, see `Noise`
                qml.DepolarizingChannel(0.75 * noise.depolarizing, wires=wire)
            if noise.amplitude_damping > 0:
                qml.AmplitudeDamping(noise.amplitude_damping, wires=wire)

    @qml.qnode(dev, interface="torch", diff_method=diff_method, shots=shots)
    def qnode(angles, weights):
        position = 0
        for layer in circuit.layers:
            for gate in layer:
                params = []
                for p in gate.params:
                    if isinstance(p, Input) and per_gate:
                        params.append(angles[..., position])
                    elif isinstance(p, Input):
                        upload = angles[..., min(p.upload, angles.shape[-2] - 1), :]
                        params.append(math.prod(upload[..., i] for i in p.indices))
                    else:
                        params.append(weights[p.index] if isinstance(p, Weight) else p.value)
                    position += isinstance(p, Input)
                getattr(qml, gate.kind)(*params, wires=list(gate.wires))
            gate_noise()
        if noise.readout_error > 0:
            for wire in wires:
                qml.BitFlip(noise.readout_error, wires=wire)
        if circuit.readout == "probs":
            return qml.probs(wires=list(wires))
        if circuit.readout == "zz":
            pairs = itertools.combinations(wires, 2)
            return [qml.expval(qml.PauliZ(i) @ qml.PauliZ(j)) for i, j in pairs]
        return [qml.expval(qml.PauliZ(w)) for w in wires]

    return qnode


def pennylane_drawing(circuit: Circuit, noise: Noise = NO_NOISE) -> str:
    """PennyLane's own drawing (qml.draw) of the circuit, every angle shown as 0: a check,
    by eye, that the gates are the ones PennyLane's templates would place."""
    qml = import_pennylane()
    qnode = make_qnode(circuit, "default.mixed", noise=noise)
    angles = torch.zeros(circuit.n_uploads, circuit.n_qubits)
    return qml.draw(qnode)(angles, torch.zeros(circuit.weight_shape))


def stack_outputs(out, dtype: torch.dtype) -> torch.Tensor:
    """PennyLane's m results of shape (B,), or one of probabilities (B, m), as (B, m)."""
    if isinstance(out, torch.Tensor):
        return out.to(dtype)
    return torch.stack([torch.as_tensor(o) for o in out], -1).to(dtype)


def pennylane_expectations(
    circuit: Circuit,
    angles: torch.Tensor,
    weights: torch.Tensor,
    device: str = "default.qubit",
    noise: Noise = NO_NOISE,
) -> torch.Tensor:
    """(B, m) exact readout computed by PennyLane."""
    diff_method = "backprop" if device in ("default.qubit", "default.mixed") else "best"
    out = make_qnode(circuit, device, diff_method, noise)(angles, weights)
    return stack_outputs(out, angles.dtype)
