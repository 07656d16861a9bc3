"""Exact, batched state-vector simulation of the LQER circuit in plain PyTorch.

Wire 0 is the most significant bit of a basis index, as in PennyLane. One layer is
encode(angles) -> trainable rotations -> entangler.

At 4 qubits the arithmetic costs nothing: the cost is the number of tensor operations. So the
training path, `probabilities`, is one autograd function with a written-out backward pass
(the adjoint method) of about twenty operations each way:

- It works in the eigenbasis of the encoding's Pauli operator P (Y for RY, X for RX). There
  the encoding exp(-i a P / 2) on every wire is diagonal, so encoding a batch is an
  elementwise product with phases exp(i angles @ Lambda), with no per-sample matrix.
- The rotations and the entangler do not depend on the sample, so each layer is one
  2^n x 2^n matrix, built once per call from the weights as a Kronecker product: one gather
  and one product over wires.
- Every gate is exp(-i t P / 2), whose derivative is the same gate at t + pi, halved. The
  matrices' derivatives by each weight are such shifted copies, built in the same gather.

`final_state` and the noise model build the same gates in the computational basis and rely
on autograd; tests hold all of them to PennyLane.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch.autograd.function import once_differentiable

from lqer.errors import LqerError

ENCODINGS = ("ry", "rx")
ROTATIONS = {"rot": 3, "ry": 1}  # name -> trainable angles per qubit and layer
ENTANGLERS = ("ring", "chain", "none")
MAX_QUBITS = 8

# Each entry g_e of these gates (flattened 2 x 2) is sin(t / 2 + pi shift_e) exp(i pi phase_e),
# with the phase linear in the angles: RY(t) = [[c, -s], [s, c]], RX(t) = [[c, -is], [-is, c]]
# and Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi), as PennyLane defines them.
RY_SHIFTS = (0.5, 1.0, 0.0, 0.5)
RX_SHIFTS, RX_PHASES = (0.5, 0.0, 0.0, 0.5), (0.0, -0.5, -0.5, 0.0)
ROT_PHASES = ((-0.5, 0.5, -0.5, 0.5), (0, 0, 0, 0), (-0.5, -0.5, 0.5, 0.5))  # / pi, per angle
# Eigenvectors (columns) of Y and X, eigenvalue +1 first.
EIGENVECTORS = {"ry": ((1, 1), (1j, -1j)), "rx": ((1, 1), (1, -1))}


@dataclass(frozen=True)
class Circuit:
    """The circuit's structure; its trainable angles live in `QuantumLayer.weights`."""

    n_qubits: int = 4
    n_layers: int = 2
    encoding: str = "ry"
    rotation: str = "rot"
    entangler: str = "ring"

    def __post_init__(self):
        if not 1 <= self.n_qubits <= MAX_QUBITS:
            raise LqerError(
                f"quantum n_qubits must be between 1 and {MAX_QUBITS} (the simulator's tables "
                f"grow as 4^n), got {self.n_qubits}"
            )
        if self.n_layers < 1:
            raise LqerError(f"quantum n_layers must be at least 1, got {self.n_layers}")
        for name, value, choices in (
            ("encoding", self.encoding, ENCODINGS),
            ("rotation", self.rotation, tuple(ROTATIONS)),
            ("entangler", self.entangler, ENTANGLERS),
        ):
            if value not in choices:
                options = ", ".join(choices)
                raise LqerError(f"quantum {name} must be one of {options}, got {value!r}")

    @property
    def dim(self) -> int:
        return 2**self.n_qubits

    @property
    def weight_shape(self) -> tuple[int, int, int]:
        return (self.n_layers, self.n_qubits, ROTATIONS[self.rotation])

    @property
    def n_params(self) -> int:
        return math.prod(self.weight_shape)

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


def _kron_table(n: int, variants: torch.Tensor | None = None) -> torch.Tensor:
    """(n, V, 4^n) index table of Kronecker products of gates (S, n, 4): wire w of product v
    and entry (i, j) read gate entry 4 (n s + w) + 2 i_w + j_w, where s = variants[v, w]."""
    wires = torch.arange(n)[:, None, None]
    index = torch.arange(4**n)[None, None, :]
    i, j = index // 2**n, index % 2**n
    entry = 2 * ((i >> (n - 1 - wires)) & 1) + ((j >> (n - 1 - wires)) & 1)
    if variants is None:
        variants = torch.zeros(1, n, dtype=torch.long)
    return 4 * (n * variants.T[:, :, None] + wires) + entry


@dataclass(frozen=True)
class Gates:
    """A family of one-wire gates with entries sin(x_e) exp(i p_e), x and p affine in the r
    angles, computed as sin(angles @ weight + offset) @ combine, since
    sin(x) cos(p) = (sin(x + p) + sin(x - p)) / 2 and
    sin(x) sin(p) = (sin(x - p + pi/2) - sin(x + p + pi/2)) / 2."""

    weight: torch.Tensor  # (r, 16)
    offset: torch.Tensor  # (16,), or (1 + r, 1, 16) for copies with each angle shifted by pi
    combine: torch.Tensor  # (16, 8): the real and imaginary part of each entry

    def __call__(self, angles: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
        """Complex entries (..., 4) of the gates for angles (..., r)."""
        offset = self.offset if offset is None else offset
        parts = torch.sin(angles @ self.weight + offset) @ self.combine
        return torch.view_as_complex(parts.unflatten(-1, (4, 2)))


def _gates(
    theta: int,
    shifts: tuple,
    phases: tuple | None = None,
    phase_angles: tuple | None = None,
    basis: torch.Tensor | None = None,
    r: int = 1,
) -> Gates:
    """`Gates` with x = angle[theta] / 2 + pi shifts, p = pi phases + angles @ phase_angles.
    With `basis` V, the entries are those of V^dagger g V, transposed; the offset then also
    holds the copies with each angle shifted by pi."""
    x_weight = torch.zeros(r, 4, dtype=torch.float64)
    x_weight[theta] = 0.5
    x_offset = torch.tensor(shifts, dtype=torch.float64) * math.pi
    p_offset = torch.tensor(phases or (0.0,) * 4, dtype=torch.float64) * math.pi
    p_weight = torch.zeros(r, 4, dtype=torch.float64)
    if phase_angles is not None:
        p_weight[:] = torch.tensor(phase_angles, dtype=torch.float64)
    signs = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)  # x + p, x - p, ...
    weight = (x_weight[..., None] + signs * p_weight[..., None]).flatten(1)
    offset = (x_offset[:, None] + signs * p_offset[:, None]).flatten()
    offset += torch.tensor([0, 0, 0.5, 0.5], dtype=torch.float64).repeat(4) * math.pi
    combine = torch.zeros(4, 4, 4, 2, dtype=torch.float64)  # (entry, sine, entry, re / im)
    for e in range(4):
        combine[e, :, e, 0] = torch.tensor([0.5, 0.5, 0, 0])
        combine[e, :, e, 1] = torch.tensor([0, 0, 0.5, -0.5])
    combine = combine.view(16, 8)
    if basis is not None:  # (V^dagger g V)^T [b, a] = sum_ij conj(V[i, a]) g[i, j] V[j, b]
        change = torch.einsum("ia,jb->ijba", basis.conj(), basis).reshape(4, 4)
        real_form = torch.zeros(4, 2, 4, 2, dtype=torch.float64)
        real_form[:, 0, :, 0] = real_form[:, 1, :, 1] = change.real
        real_form[:, 0, :, 1], real_form[:, 1, :, 0] = change.imag, -change.imag
        combine = combine @ real_form.view(8, 8)
        shifted = torch.cat([torch.zeros(1, r), torch.eye(r)]).double() * math.pi
        offset = (offset + shifted @ weight).unsqueeze(1)
    return Gates(weight, offset, combine)


@dataclass(frozen=True)
class Tables:
    """Constants of one circuit for one device and dtype, made once: per-call copies would
    cost time and, on a GPU, a synchronisation. Matrices of the fast path are transposed,
    because it keeps states as row vectors."""

    z_signs: torch.Tensor  # (d, n): the Pauli-Z eigenvalue of each wire in each basis state
    kron: torch.Tensor  # (n, 1, d * d): one product of gates (n, 4)
    shifted_kron: torch.Tensor  # (n, 1 + n r, d * d): variant 1 + r w + k shifts angle k of wire w
    layer_index: torch.Tensor  # `kron` for L layers' gates (L, 1, n, 4), as `_gather_index`
    shifted_layer_index: torch.Tensor  # `shifted_kron` for gates (L, 1 + r, n, 4)
    encodings: Gates
    rotations: Gates
    eigen_rotations: Gates  # in the encoding's eigenbasis, transposed, and shifted by pi
    entangler: torch.Tensor  # (d, d) permutation matrix of the CNOTs
    eigen_phase: torch.Tensor  # (n, d): angles @ eigen_phase are the encoding's phases
    angle_gradient: torch.Tensor  # (d, n): -eigen_phase^T, since d exp(i phase) = i exp(i phase)
    closing: torch.Tensor  # (L, d, d): what follows each layer's rotations, transposed


@functools.lru_cache(maxsize=128)
def tables(circuit: Circuit, device: torch.device, dtype: torch.dtype) -> Tables:
    """The circuit's `Tables` for real dtype `dtype` on `device`."""
    n, d, r = circuit.n_qubits, circuit.dim, ROTATIONS[circuit.rotation]
    variants = torch.zeros(1 + n * r, n, dtype=torch.long)
    for w in range(n):
        variants[1 + w * r : 1 + (w + 1) * r, w] = torch.arange(1, r + 1)
    entangler = torch.eye(d, dtype=torch.complex128)[circuit.entangler_permutation]
    v = torch.tensor(EIGENVECTORS[circuit.encoding], dtype=torch.complex128) / math.sqrt(2)
    w_all = functools.reduce(torch.kron, [v] * n)  # the eigenbasis of all wires
    # Layers before the last return to the eigenbasis; the last one ends in the computational
    # basis, scaled so that the first layer may start from the unnormalised state of all ones.
    mix, last = w_all.mH @ entangler @ w_all, entangler @ w_all / math.sqrt(d)
    closing = torch.stack([mix] * (circuit.n_layers - 1) + [last]).mT
    if circuit.encoding == "rx":
        encodings = _gates(0, RX_SHIFTS, RX_PHASES)
    else:
        encodings = _gates(0, RY_SHIFTS)
    if circuit.rotation == "rot":
        rotation = {"theta": 1, "shifts": RY_SHIFTS, "phase_angles": ROT_PHASES, "r": 3}
    else:
        rotation = {"theta": 0, "shifts": RY_SHIFTS}

    def on(gates: Gates) -> Gates:
        return Gates(*(x.to(device, dtype) for x in dataclasses.astuple(gates)))

    kron, shifted_kron, layers = _kron_table(n), _kron_table(n, variants), circuit.n_layers
    return Tables(
        z_signs=circuit.z_signs.to(device, dtype),
        kron=kron.to(device),
        shifted_kron=shifted_kron.to(device),
        layer_index=_gather_index(kron, layers, n * 4).to(device),
        shifted_layer_index=_gather_index(shifted_kron, layers, (1 + r) * n * 4).to(device),
        encodings=on(encodings),
        rotations=on(_gates(**rotation)),
        eigen_rotations=on(_gates(**rotation, basis=v)),
        entangler=entangler.to(device, complex_dtype(dtype)),
        eigen_phase=(-circuit.z_signs.T / 2).to(device, dtype),
        angle_gradient=(circuit.z_signs / 2).to(device, dtype),
        closing=closing.to(device, complex_dtype(dtype)),
    )


def rotation_entries(circuit: Circuit, weights: torch.Tensor) -> torch.Tensor:
    """Complex entries (..., n, 4) of the trainable rotations, weights (..., n, r)."""
    return tables(circuit, weights.device, weights.dtype).rotations(weights)


def _gather_index(table: torch.Tensor, rows: int, row_size: int) -> torch.Tensor:
    """`table` (n, V, D) for each of `rows` rows of `row_size` gate entries, as one flat index:
    a 1-D gather is several times faster than one along the columns of a matrix."""
    offsets = torch.arange(0, rows * row_size, row_size, device=table.device)
    return (table.unsqueeze(1) + offsets[:, None, None]).flatten()


def _products(entries: torch.Tensor, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Kronecker products (..., V, D) of gate entries (..., S, n, 4), read off via `table`
    through its `_gather_index`."""
    n, variants, size = table.shape
    picked = entries.reshape(-1).index_select(0, index).view(n, -1, variants, size)
    return picked.prod(0).view(*entries.shape[:-3], variants, size)


def kron(circuit: Circuit, gates: torch.Tensor) -> torch.Tensor:
    """(..., 2^n, 2^n) product of one gate per wire, (..., n, 2, 2); wire 0 first."""
    t = tables(circuit, gates.device, gates.real.dtype)
    entries = gates.flatten(-2).unsqueeze(-3)  # (..., 1, n, 4)
    index = _gather_index(
        t.kron, entries.numel() // entries.shape[-2:].numel(), 4 * circuit.n_qubits
    )
    products = _products(entries, t.kron, index)
    return products.view(*gates.shape[:-3], circuit.dim, circuit.dim)


def encoding_matrices(circuit: Circuit, angles: torch.Tensor) -> torch.Tensor:
    """Complex RY or RX matrices (..., 2^n, 2^n) that encode angles (..., n) on all wires."""
    entries = tables(circuit, angles.device, angles.dtype).encodings(angles.unsqueeze(-1))
    return kron(circuit, entries.unflatten(-1, (2, 2)))


def layer_unitaries(circuit: Circuit, weights: torch.Tensor, entangle: bool = True) -> torch.Tensor:
    """(L, 2^n, 2^n) unitaries of each layer's rotations, then (with `entangle`) its entangler."""
    rotations = kron(circuit, rotation_entries(circuit, weights).unflatten(-1, (2, 2)))
    if not entangle:
        return rotations
    return entangler_unitary(circuit, weights.device, weights.dtype) @ rotations


def entangler_unitary(circuit: Circuit, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(2^n, 2^n) complex permutation matrix of the entangler."""
    return tables(circuit, device, dtype).entangler


def final_state(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """State after the circuit, complex (B, 2^n), gate by gate. angles: (B, L, n), one set per
    layer, or (B, 1, n) when every layer encodes the same angles."""
    encodings = encoding_matrices(circuit, angles)
    unitaries = layer_unitaries(circuit, weights)
    state = unitaries.new_zeros(angles.shape[0], circuit.dim, 1)
    state[:, 0] = 1
    for layer in range(circuit.n_layers):
        state = unitaries[layer] @ (encodings[:, min(layer, angles.shape[1] - 1)] @ state)
    return state.squeeze(-1)


def _layer_matrices(t: Tables, weights: torch.Tensor, derivatives: bool) -> torch.Tensor:
    """(L, V, d, d): each layer's transposed matrix in the eigenbasis (variant 0), then with
    each weight shifted by pi (twice its derivative), if `derivatives`."""
    gates, (layers, d, _) = t.eigen_rotations, t.closing.shape
    if derivatives:
        entries = gates(weights.unsqueeze(1))
        products = _products(entries, t.shifted_kron, t.shifted_layer_index)
    else:
        entries = gates(weights.unsqueeze(1), gates.offset[:1])
        products = _products(entries, t.kron, t.layer_index)
    return (products.view(layers, -1, d) @ t.closing).view(layers, -1, d, d)


class Probabilities(torch.autograd.Function):
    """(angles (B, U, n), weights (L, n, r)) -> probabilities (B, 2^n) of the basis states.

    U is L, or 1 when every layer encodes the same angles. States are row vectors in the
    eigenbasis of the encoding until the last layer. The backward pass is the adjoint method;
    it carries h = dL/dRe z - i dL/dIm z for each complex z, which needs no conjugation.
    """

    @staticmethod
    def forward(ctx, angles: torch.Tensor, weights: torch.Tensor, t: Tables) -> torch.Tensor:
        matrices = _layer_matrices(t, weights, derivatives=ctx.needs_input_grad[1])
        phase = angles @ t.eigen_phase  # (B, U, d)
        phases = torch.polar(torch.ones_like(phase), phase)
        state, saved = phases[:, 0], []  # the first encoding of |0...0>, unnormalised
        for layer in range(matrices.shape[0] - 1):
            mixed = state @ matrices[layer, 0]
            saved += [state, mixed]
            state = phases[:, min(layer + 1, phases.shape[1] - 1)] * mixed
        out = state @ matrices[-1, 0]
        ctx.save_for_backward(phases, matrices, state, out, *saved)
        ctx.tables, ctx.weight_shape = t, weights.shape
        return torch.view_as_real(out).square().sum(-1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        phases, matrices, state, out, *saved = ctx.saved_tensors
        layers = matrices[:, 0].mT
        h = 2 * grad * out.conj()
        h_matrices = [state.mT @ h]
        h = h @ layers[-1]
        h_phases = torch.zeros_like(phases)
        for layer in reversed(range(matrices.shape[0] - 1)):
            before, mixed = saved[2 * layer], saved[2 * layer + 1]
            upload = min(layer + 1, phases.shape[1] - 1)
            h_phases[:, upload] += mixed * h
            h = phases[:, upload] * h  # by the mixed state
            h_matrices.insert(0, before.mT @ h)
            h = h @ layers[layer]
        h_phases[:, 0] += h
        grad_angles = (phases * h_phases).imag @ ctx.tables.angle_gradient
        grad_weights = None
        if ctx.needs_input_grad[1]:  # dM/dw = M(w + pi) / 2
            h_matrices = torch.stack(h_matrices).flatten(1).unsqueeze(-1)
            grad_weights = (matrices[:, 1:].flatten(2) @ h_matrices).real / 2
            grad_weights = grad_weights.view(ctx.weight_shape)
        return grad_angles, grad_weights, None


def probabilities(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Probability of each basis state, (B, 2^n); angles as in `final_state`."""
    return Probabilities.apply(angles, weights, tables(circuit, angles.device, angles.dtype))


def expectations(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Pauli-Z expectation of each wire, (B, n)."""
    probs = probabilities(circuit, angles, weights)
    return probs @ tables(circuit, probs.device, probs.dtype).z_signs


def init_weights(circuit: Circuit, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform angles in [0, 2 pi), PennyLane TorchLayer's default."""
    return torch.rand(circuit.weight_shape, generator=generator) * (2 * math.pi)
