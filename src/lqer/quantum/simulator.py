"""Exact, batched state-vector simulation of the LQER circuit in plain PyTorch.

Wire 0 is the most significant bit of a basis index, as in PennyLane. One layer is
encode(angles) -> trainable rotations -> entangler.

Why this is cheap: at 4 qubits the work is tiny, so the cost is the number of tensor operations
(kernel launches, autograd nodes), not arithmetic. Hence:

- The trainable rotations and the entangler do not depend on the sample, so each layer's part is
  one 2^n x 2^n unitary, built once per call from the weights: Rot(phi, theta, omega) has the
  entries of RY(theta) times phases linear in phi and omega, so it takes one gather-product
  and one cosine of an affine map, whatever n is.
- Kronecker products are a gather through a precomputed index table and n - 1 products.
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


@dataclass(frozen=True)
class Tables:
    """Constants of one circuit for one device and dtype, made once: per-call copies would
    cost time and, on a GPU, a synchronisation.

    A Kronecker product U[i, j] = prod_w g_w[i_w, j_w] of 2 x 2 gates g (n, 2, 2) is a gather
    and n - 1 products: an index table names, for each output entry and wire, the element
    4 w + 2 i_w + j_w of g that the wire contributes.
    """

    kron: torch.Tensor  # (n * d * d,): U[i, j]
    ry_shifts: torch.Tensor  # (4,): sin(a / 2 + shift) = the entries of RY(a)
    amplitude: torch.Tensor  # (n * m * m,): RY(theta) factors of the layer matrices' entries
    phase_weights: torch.Tensor | None  # (n * 3, m * m) for Rot rotations
    phase_bias: torch.Tensor | None  # (m * m,)
    frame: torch.Tensor | None  # (d, d) phases d_i conj(d_j) of D . D^dagger, RX encodings only
    z_signs: torch.Tensor  # (d, n)


def _kron_table(n: int, rows: torch.Tensor) -> torch.Tensor:
    """(n * len(rows) * d,) index table of a Kronecker product whose rows are `rows`."""
    wires = torch.arange(n)[:, None, None]
    row_bits = (rows[:, None] >> (n - 1 - wires)) & 1
    col_bits = (torch.arange(2**n)[None, :] >> (n - 1 - wires)) & 1
    return (4 * wires + 2 * row_bits + col_bits).flatten()


@functools.lru_cache(maxsize=128)
def tables(
    circuit: Circuit,
    device: torch.device,
    dtype: torch.dtype,
    entangle: bool = True,
    transpose: bool = False,
) -> Tables:
    """The circuit's `Tables` for real dtype `dtype` on `device`. `entangle=False` leaves the
    entangler out of the layer matrices; `transpose=True` builds every matrix transposed, for
    row-vector states."""
    n, d = circuit.n_qubits, circuit.dim
    index = torch.arange(d)
    rows = circuit.entangler_permutation if entangle else index  # E U = U[p, :]
    real = circuit.is_real
    phase_weights = phase_bias = frame = None
    if real:
        amplitude = _kron_table(n, rows)
    else:  # the real form [[Re, -Im], [Im, Re]]: each entry is |U| cos(phase + offset)
        amplitude = _kron_table(n, rows.repeat(2)).view(n, 2 * d, d).repeat(1, 1, 2).flatten()
        wires = torch.arange(n)[:, None]
        bits = ((torch.stack([rows, index])[:, None] >> (n - 1 - wires)) & 1).double() - 0.5
        row_half, col_half = bits[0], bits[1]  # (n, d): i_w - 1/2 of row p[i], j_w - 1/2 of col j
        bias = torch.zeros(2, d, 2, d, dtype=torch.float64)
        bias[0, :, 1] += math.pi / 2  # -Im U = |U| cos(phase + pi / 2)
        bias[1, :, 0] -= math.pi / 2  # Im U = |U| cos(phase - pi / 2)
        if circuit.encoding == "rx":
            z = circuit.z_signs.sum(1)  # phase of d_i conj(d_j): -pi/4 (z(i) - z(j))
            frame_phase = -math.pi / 4 * (z[:, None] - z[None, :])
            bias += frame_phase[None, :, None, :]
            frame = torch.polar(torch.ones(d, d, dtype=torch.float64), frame_phase)
            frame = frame.to(device, complex_dtype(dtype))
        phase_bias = bias.flatten().to(device, dtype)
        if circuit.rotation == "rot":  # phase of Rot[i, j]: (j - 1/2) phi + (i - 1/2) omega
            weights = torch.zeros(n, 3, 2, d, 2, d, dtype=torch.float64)
            weights[:, 0] = col_half[:, None, None, None, :]
            weights[:, 2] = row_half[:, None, :, None, None]
            phase_weights = weights.view(3 * n, -1).to(device, dtype)
    kron = _kron_table(n, index)
    if transpose:
        m = int(math.isqrt(len(amplitude) // n))
        kron = kron.view(n, d, d).transpose(1, 2).flatten()
        amplitude = amplitude.view(n, m, m).transpose(1, 2).flatten()
        if phase_bias is not None:
            phase_bias = phase_bias.view(m, m).T.flatten()
        if phase_weights is not None:
            phase_weights = phase_weights.view(-1, m, m).transpose(1, 2).flatten(1)
    return Tables(
        kron=kron.to(device),
        ry_shifts=torch.tensor([0.5, 1, 0, 0.5], dtype=dtype, device=device) * math.pi,
        amplitude=amplitude.to(device),
        phase_weights=phase_weights,
        phase_bias=phase_bias,
        frame=frame,
        z_signs=circuit.z_signs.to(device, dtype),
    )


def _wire_product(gates: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The Kronecker product of gates (..., n, 4) read off through `table`, flattened."""
    n = gates.shape[-2]
    picked = gates.flatten(-2).index_select(-1, table).unflatten(-1, (n, -1))
    return math.prod(picked.unbind(-2))


def _ry_entries(angles: torch.Tensor, t: Tables) -> torch.Tensor:
    """Flattened RY(a) = [[c, -s], [s, c]], (..., n, 4), as one sine."""
    return torch.sin(torch.add(t.ry_shifts, angles.unsqueeze(-1), alpha=0.5))


def kron(circuit: Circuit, gates: torch.Tensor) -> torch.Tensor:
    """(..., 2^n, 2^n) product of one gate per wire, (..., n, 2, 2); wire 0 first."""
    t = tables(circuit, gates.device, gates.real.dtype)
    return _wire_product(gates.flatten(-2), t.kron).unflatten(-1, (circuit.dim, circuit.dim))


def _layer_matrices(circuit: Circuit, weights: torch.Tensor, t: Tables) -> torch.Tensor:
    """(L, m, m) real matrices of each layer's rotations (and entangler), in the encoding frame.

    m = 2^n for real circuits; otherwise m = 2^(n+1), the real form [[Re, -Im], [Im, Re]] that
    acts on [re; im] as the complex unitary acts on a state. Rot(phi, theta, omega) has entries
    RY(theta) times phases linear in phi and omega, so a layer's matrix is the Kronecker
    product of RY(theta) times the cosine of one affine map of the weights.
    """
    theta = weights[..., 1] if circuit.rotation == "rot" else weights[..., 0]
    entries = _wire_product(_ry_entries(theta, t), t.amplitude)
    if t.phase_weights is not None:
        entries = entries * torch.cos(
            torch.addmm(t.phase_bias, weights.flatten(1), t.phase_weights)
        )
    elif t.phase_bias is not None:
        entries = entries * torch.cos(t.phase_bias)
    size = circuit.dim * (1 if circuit.is_real else 2)
    return entries.view(-1, size, size)


def layer_unitaries(circuit: Circuit, weights: torch.Tensor, entangle: bool = True) -> torch.Tensor:
    """(L, 2^n, 2^n) complex unitaries of each layer's rotations, then (with `entangle`) its
    entangler, in the encoding frame (see `Circuit.rx_frame`)."""
    t = tables(circuit, weights.device, weights.dtype, entangle)
    m, d = _layer_matrices(circuit, weights, t), circuit.dim
    if circuit.is_real:
        return m.to(complex_dtype(m.dtype))
    return torch.complex(m[:, :d, :d], m[:, d:, :d])


def entangler_unitary(circuit: Circuit, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(2^n, 2^n) complex permutation matrix of the entangler, in the encoding frame."""
    identity = torch.eye(circuit.dim, device=device, dtype=complex_dtype(dtype))
    entangler = identity[circuit.entangler_permutation.to(device)]
    frame = tables(circuit, device, dtype).frame
    return entangler if frame is None else entangler * frame


def encoding_matrices(circuit: Circuit, angles: torch.Tensor) -> torch.Tensor:
    """Real RY^(x n) matrices (..., 2^n, 2^n) of the encoding in its frame, angles (..., n)."""
    t = tables(circuit, angles.device, angles.dtype)
    return _wire_product(_ry_entries(angles, t), t.kron).unflatten(-1, (circuit.dim, -1))


def _evolve(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The final state in the encoding frame as real parts (B, c, 2^n): c = 1 (real circuits)
    or 2 (re, im). States are row vectors, so every matrix is built transposed."""
    batch, dim, uploads = angles.shape[0], circuit.dim, angles.shape[1]
    t = tables(circuit, angles.device, angles.dtype, transpose=True)
    layers = _layer_matrices(circuit, weights, t)  # (L, m, m)
    encodings = _wire_product(_ry_entries(angles, t), t.kron).view(batch, uploads, dim, dim)
    state = encodings[:, 0, 0] @ layers[0, :dim]  # the first encoding acts on |0...0>
    for layer in range(1, circuit.n_layers):
        state = state.view(batch, -1, dim) @ encodings[:, min(layer, uploads - 1)]
        state = state.view(batch, -1) @ layers[layer]
    return state.view(batch, -1, dim)


def final_state(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """State after the circuit, complex (B, 2^n). angles: (B, L, n), one set per layer, or
    (B, 1, n) when every layer encodes the same angles."""
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
