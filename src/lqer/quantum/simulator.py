"""Exact, batched state-vector simulation of the LQER circuit in plain PyTorch.

Wire 0 is the most significant bit of a basis index, as in PennyLane. One layer is
encode(angles) -> trainable rotations -> entangler.

Why this is cheap: at 4 qubits the work is tiny, so the cost is the number of tensor operations
(kernel launches, autograd nodes), not arithmetic. Hence:

- The trainable rotations and the entangler do not depend on the sample, so each layer's part is
  one 2^n x 2^n unitary, built once per call from the weights.
- RX(a) = RZ(-pi/2) RY(a) RZ(pi/2), and the diagonal RZ frame changes fold into those unitaries,
  so the per-sample encoding is always a real matrix: a Kronecker product of RY gates.
- Complex numbers are carried as real and imaginary parts, so autograd sees only real tensors,
  and a state that meets only real gates (RY rotations with RY encoding) stays real.
"""

from __future__ import annotations

import functools
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

    @property
    def n_params(self) -> int:
        return math.prod(self.weight_shape)

    @property
    def is_real(self) -> bool:
        """Whether every gate is real, so that the state never needs an imaginary part."""
        return self.rotation == "ry" and self.encoding == "ry"

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

    @cached_property
    def rx_frame(self) -> torch.Tensor:
        """Diagonal of D = RZ(pi/2)^(x n), the frame in which RX encodings become RY ones."""
        return torch.exp(-0.25j * math.pi * self.z_signs.sum(1))


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


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


def ry(angles: torch.Tensor) -> torch.Tensor:
    """RY matrices (..., 2, 2), real."""
    c, s = torch.cos(angles / 2), torch.sin(angles / 2)
    return torch.stack([c, -s, s, c], -1).unflatten(-1, (2, 2))


@dataclass(frozen=True)
class Tables:
    """Index tables of one circuit on one device, made once: per-call copies would sync a GPU.

    A Kronecker product U[i, j] = prod_w g_w[i_w, j_w] of 2 x 2 gates g (n, 2, 2) is a gather
    and n - 1 products: entry k of a table names the element (w, i_w, j_w) of g that wire w
    contributes to the k-th output, flattened as 4 w + 2 i_w + j_w.
    """

    kron: torch.Tensor  # (n * d * d,)
    entangled_kron: torch.Tensor  # the same with the rows permuted by the entangler: E U
    first_columns: torch.Tensor  # (n * d,): U |0...0>
    frame: torch.Tensor | None  # (d, d) phases d_i conj(d_j) of D . D^dagger, RX encodings only
    z_signs: torch.Tensor  # (d, n)


@functools.lru_cache(maxsize=64)
def tables(circuit: Circuit, device: torch.device, dtype: torch.dtype) -> Tables:
    """The circuit's `Tables` for states of the real dtype `dtype` on `device`."""
    n, index = circuit.n_qubits, torch.arange(circuit.dim)
    wires = torch.arange(n)[:, None]
    bits = (index[None, :] >> (n - 1 - wires)) & 1  # (n, d)
    entry = 4 * wires[:, :, None] + 2 * bits[:, :, None] + bits[:, None, :]  # (n, d, d)
    frame = None
    if circuit.encoding == "rx":
        d = circuit.rx_frame.to(device, complex_dtype(dtype))
        frame = d[:, None] * d.conj()
    return Tables(
        kron=entry.flatten().to(device),
        entangled_kron=entry[:, circuit.entangler_permutation].flatten().to(device),
        first_columns=entry[..., 0].flatten().to(device),
        frame=frame,
        z_signs=circuit.z_signs.to(device, dtype),
    )


def _wire_product(gates: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The Kronecker product of gates (..., n, 2, 2) read off through `table`, flattened."""
    n = gates.shape[-3]
    picked = gates.flatten(-3).index_select(-1, table).unflatten(-1, (n, -1))
    return math.prod(picked.unbind(-2))


def kron(circuit: Circuit, gates: torch.Tensor, entangle: bool = False) -> torch.Tensor:
    """(..., 2^n, 2^n) product of one gate per wire, (..., n, 2, 2); wire 0 first.

    With `entangle`, the entangler follows: E (g_0 x ... x g_(n-1)).
    """
    t = tables(circuit, gates.device, gates.real.dtype)
    product = _wire_product(gates, t.entangled_kron if entangle else t.kron)
    return product.unflatten(-1, (circuit.dim, circuit.dim))


def layer_unitaries(circuit: Circuit, weights: torch.Tensor, entangle: bool = True) -> torch.Tensor:
    """(L, 2^n, 2^n) unitaries of each layer's trainable rotations, then its entangler.

    They are given in the encoding frame (see `Circuit.rx_frame`), and real where the gates are.
    """
    if circuit.rotation == "rot":
        gates = rot(weights[..., 0], weights[..., 1], weights[..., 2])
    else:
        gates = ry(weights[..., 0])
    return to_encoding_frame(circuit, kron(circuit, gates, entangle))


def entangler_unitary(circuit: Circuit, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(2^n, 2^n) permutation matrix of the entangler, in the encoding frame."""
    identity = torch.eye(circuit.dim, device=device, dtype=dtype)
    perm = circuit.entangler_permutation.to(device)
    return to_encoding_frame(circuit, identity[perm])


def to_encoding_frame(circuit: Circuit, unitary: torch.Tensor) -> torch.Tensor:
    """D U D^dagger for RX encodings, so that they become real RY encodings; U for RY ones."""
    frame = tables(circuit, unitary.device, unitary.real.dtype).frame
    return unitary if frame is None else unitary * frame


def _real_form(unitary: torch.Tensor) -> torch.Tensor:
    """The real (2d, 2d) matrix acting on [re; im] as the complex (d, d) one acts on a vector."""
    re, im = unitary.real, unitary.imag
    return torch.cat([torch.cat([re, -im], -1), torch.cat([im, re], -1)], -2)


def _evolve(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The state in the encoding frame as real parts (B, c, 2^n): c = 1 (real) or 2 (re, im)."""
    t = tables(circuit, angles.device, angles.dtype)
    unitaries = layer_unitaries(circuit, weights)
    if unitaries.is_complex():
        unitaries = _real_form(unitaries)  # (L, 2d, 2d)
    batch, dim = angles.shape[0], circuit.dim
    gates = ry(angles)  # (B, L, n, 2, 2): the encoding, RY in this frame
    # The first encoding acts on |0...0>: a product state, the first column of its matrix.
    state = _wire_product(gates[:, 0], t.first_columns)  # (B, d)
    state = state @ unitaries[0][:, :dim].T
    for layer in range(1, circuit.n_layers):
        encoding = _wire_product(gates[:, layer], t.kron).view(batch, dim, dim)
        state = state.view(batch, -1, dim) @ encoding.transpose(1, 2)
        state = state.view(batch, -1) @ unitaries[layer].T
    return state.view(batch, -1, dim)


def final_state(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """State after the circuit, complex (B, 2^n). angles: (B, L, n), one set per layer."""
    parts = _evolve(circuit, angles, weights)
    if parts.shape[1] == 1:
        state = parts[:, 0].to(complex_dtype(parts.dtype))
    else:
        state = torch.complex(parts[:, 0], parts[:, 1])
    if circuit.encoding == "rx":  # back from the encoding frame: psi = D^dagger psi' D|0...0>
        d = circuit.rx_frame.to(state.device, state.dtype)
        state = state * (d[0] * d.conj())
    return state


def probabilities(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Probability of each basis state, (B, 2^n); the frame change leaves them unchanged."""
    return _evolve(circuit, angles, weights).square().sum(1)


def expectations(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Pauli-Z expectation of each wire, (B, n)."""
    probs = probabilities(circuit, angles, weights)
    return probs @ tables(circuit, probs.device, probs.dtype).z_signs


def init_weights(circuit: Circuit, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform angles in [0, 2 pi), PennyLane TorchLayer's default."""
    return torch.rand(circuit.weight_shape, generator=generator) * (2 * math.pi)
