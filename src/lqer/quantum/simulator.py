"""Exact, batched state-vector simulation of the LQER circuit in plain PyTorch.

Wire 0 is the most significant bit of a basis index, as in PennyLane. One layer is
encode(angles) -> trainable rotations -> entangler. The trainable part and the entangler do not
depend on the sample, so each layer applies one 2^n x 2^n unitary built once per call; only the
encoding rotations are applied per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

ENCODINGS = ("ry", "rx")
ROTATIONS = {"rot": 3, "ry": 1}  # name -> trainable angles per qubit and layer
ENTANGLERS = ("ring", "chain", "none")


@dataclass(frozen=True)
class Circuit:
    """The circuit's structure; its trainable angles live in `QuantumLayer.weights`."""

    n_qubits: int = 4
    n_layers: int = 2
    encoding: str = "ry"
    rotation: str = "rot"
    entangler: str = "ring"

    def __post_init__(self):
        if self.n_qubits < 1 or self.n_layers < 1:
            raise ValueError("n_qubits and n_layers must be at least 1")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {tuple(ROTATIONS)}, got {self.rotation!r}")
        if self.entangler not in ENTANGLERS:
            raise ValueError(f"entangler must be one of {ENTANGLERS}, got {self.entangler!r}")

    @property
    def dim(self) -> int:
        return 2**self.n_qubits

    @property
    def weight_shape(self) -> tuple[int, int, int]:
        return (self.n_layers, self.n_qubits, ROTATIONS[self.rotation])

    @cached_property
    def cnots(self) -> tuple[tuple[int, int], ...]:
        """(control, target) pairs of the entangler, applied in order."""
        n = self.n_qubits
        if self.entangler == "none" or n == 1:
            return ()
        chain = tuple((i, i + 1) for i in range(n - 1))
        if self.entangler == "ring" and n > 2:
            return (*chain, (n - 1, 0))
        return chain

    @cached_property
    def entangler_permutation(self) -> torch.Tensor:
        """Index map p with (E psi)[k] = psi[p[k]] for the CNOT sequence E."""
        n, index = self.n_qubits, torch.arange(self.dim)
        perm = index.clone()
        for control, target in self.cnots:
            ctrl_bit = (index >> (n - 1 - control)) & 1
            flip = index ^ (ctrl_bit << (n - 1 - target))
            perm = perm[flip]  # CNOT is its own inverse, so its index map is `flip`
        return perm

    @cached_property
    def z_signs(self) -> torch.Tensor:
        """(2^n, n) matrix of the Pauli-Z eigenvalue of each wire in each basis state."""
        index = torch.arange(self.dim)[:, None]
        wires = torch.arange(self.n_qubits)[None, :]
        return 1.0 - 2.0 * ((index >> (self.n_qubits - 1 - wires)) & 1).double()


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def axis_rotation(axis: str, angles: torch.Tensor) -> torch.Tensor:
    """RX or RY matrices, shape (..., 2, 2), complex."""
    c = torch.cos(angles / 2).to(complex_dtype(angles.dtype))
    s = torch.sin(angles / 2).to(complex_dtype(angles.dtype))
    if axis == "ry":
        rows = [torch.stack([c, -s], -1), torch.stack([s, c], -1)]
    elif axis == "rx":
        rows = [torch.stack([c, -1j * s], -1), torch.stack([-1j * s, c], -1)]
    else:
        raise ValueError(f"unknown rotation axis {axis!r}")
    return torch.stack(rows, -2)


def rot(phi: torch.Tensor, theta: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """PennyLane's Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi), shape (..., 2, 2)."""
    cdtype = complex_dtype(theta.dtype)
    c = torch.cos(theta / 2).to(cdtype)
    s = torch.sin(theta / 2).to(cdtype)
    plus = torch.exp(-0.5j * (phi + omega).to(cdtype))
    minus = torch.exp(0.5j * (phi - omega).to(cdtype))
    rows = [
        torch.stack([plus * c, -minus * s], -1),
        torch.stack([minus.conj() * s, plus.conj() * c], -1),
    ]
    return torch.stack(rows, -2)


def kron(mats: torch.Tensor) -> torch.Tensor:
    """Kronecker product over dim -3 of (..., n, 2, 2) matrices; wire 0 first."""
    out = mats[..., 0, :, :]
    for i in range(1, mats.shape[-3]):
        m = mats[..., i, :, :]
        d = out.shape[-1] * 2
        out = (out[..., :, None, :, None] * m[..., None, :, None, :]).reshape(*out.shape[:-2], d, d)
    return out


def trainable_unitaries(circuit: Circuit, weights: torch.Tensor) -> torch.Tensor:
    """(L, 2^n, 2^n) unitaries: the rotations of each layer followed by its entangler."""
    if circuit.rotation == "rot":
        gates = rot(weights[..., 0], weights[..., 1], weights[..., 2])
    else:
        gates = axis_rotation("ry", weights[..., 0])
    unitary = kron(gates)
    return unitary[:, circuit.entangler_permutation.to(unitary.device), :]


def apply_encoding(circuit: Circuit, state: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Apply one rotation per wire and sample: state (B, 2^n), angles (B, n)."""
    gates = axis_rotation(circuit.encoding, angles)  # (B, n, 2, 2)
    batch, n = state.shape[0], circuit.n_qubits
    for wire in range(n):
        view = state.reshape(batch, 2**wire, 2, 2 ** (n - 1 - wire))
        state = torch.einsum("bxy,bayc->baxc", gates[:, wire], view)
    return state.reshape(batch, -1)


def final_state(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """State after the circuit. angles: (B, L, n), one set of encoded angles per layer."""
    batch = angles.shape[0]
    unitaries = trainable_unitaries(circuit, weights)
    state = torch.zeros(batch, circuit.dim, dtype=unitaries.dtype, device=angles.device)
    state[:, 0] = 1
    for layer in range(circuit.n_layers):
        state = apply_encoding(circuit, state, angles[:, layer])
        state = state @ unitaries[layer].T
    return state


def probabilities(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    state = final_state(circuit, angles, weights)
    return state.real**2 + state.imag**2


def expectations(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Pauli-Z expectation of each wire, (B, n)."""
    probs = probabilities(circuit, angles, weights)
    return probs @ circuit.z_signs.to(probs)


def init_weights(circuit: Circuit, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform angles in [0, 2 pi), PennyLane TorchLayer's default."""
    return torch.rand(circuit.weight_shape, generator=generator) * (2 * math.pi)
