"""The simulator's fast path: circuits that alternate an encoding, the same Pauli rotation P
of input w on every wire w, with a block of trainable and fixed gates, as every re-uploading
ansatz does (`plan` says whether a circuit is one).

At 4 qubits the arithmetic costs nothing and the number of tensor operations is the cost, so
it is one autograd function with a written-out backward pass (the adjoint method) of about
twenty operations each way. It works in the eigenbasis of P, where encoding a batch is an
elementwise product with phases exp(i angles @ Lambda). Each block is one matrix, built once
per call from the weights, and since every gate parameter is a Pauli rotation angle, the
block's derivative by each weight is the block with that angle shifted by pi, halved: these
shifted copies are built in the same batched Kronecker product.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from lqer.quantum import gates
from lqer.quantum.ansatz import Circuit, GateLayer, Input, Weight
from lqer.quantum.matrices import complex_dtype, gate_matrix
from lqer.quantum.tensors import z_signs
from lqer.quantum.unitaries import constant_layer, gather_index, is_constant, kron_table, products

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Rotations:
    """One gate layer of a block: the same one-wire `kind` on every wire, its parameters the
    weights [layer, wire, first : first + count]."""

    kind: str
    first: int
    count: int


@dataclass(frozen=True)
class Plan:
    """How the fast path runs a circuit: encoding layers of Pauli rotations `pauli`, each
    followed by a block of positions: `Rotations`, or the index of a constant gate layer in
    the circuit (None for the identity). Block l of the plan is layer l of the weights."""

    pauli: str
    positions: tuple[Rotations | None, ...]  # None: a constant position
    constants: tuple[tuple[tuple[int, ...], ...], ...]  # per layer, per constant position


def _encoding(layer: GateLayer, upload: int, n: int) -> str | None:
    """The Pauli operator of an encoding layer that the fast path takes, else None."""
    kinds = {g.kind for g in layer}
    pauli = gates.KINDS[next(iter(kinds))].pauli if len(kinds) == 1 else None
    expected = tuple(((w,), (Input((w,), upload),)) for w in range(n))
    if pauli not in ("X", "Y") or tuple((g.wires, g.params) for g in layer) != expected:
        return None
    return pauli


def _rotations(layer: GateLayer, block: int, n: int) -> Rotations | None:
    kinds = {g.kind for g in layer}
    if len(kinds) != 1 or len(layer) != n:
        return None
    kind = next(iter(kinds))
    count = gates.KINDS[kind].n_params
    first = layer[0].params[0].index[2] if isinstance(layer[0].params[0], Weight) else -1
    expected = tuple(
        ((w,), tuple(Weight((block, w, first + j)) for j in range(count))) for w in range(n)
    )
    if first < 0 or tuple((g.wires, g.params) for g in layer) != expected:
        return None
    return Rotations(kind, first, count)


@functools.lru_cache(maxsize=128)
def plan(circuit: Circuit) -> Plan | None:
    """The fast path's plan for `circuit`, or None where only the general path applies."""
    n, blocks, paulis = circuit.n_qubits, [], set()
    for index, layer in enumerate(circuit.layers):
        pauli = _encoding(layer, len(blocks), n)
        if pauli is not None:
            paulis.add(pauli)
            blocks.append(([], []))
        elif not blocks:
            return None
        elif is_constant(layer):
            positions, constants = blocks[-1]
            if positions and positions[-1] is None:
                constants[-1] += (index,)
            else:
                positions.append(None)
                constants.append((index,))
        else:
            rotations = _rotations(layer, len(blocks) - 1, n)
            if rotations is None:
                return None
            blocks[-1][0].append(rotations)
    for positions, constants in blocks:  # every block ends in a constant: the basis change
        if not positions or positions[-1] is not None:
            positions.append(None)
            constants.append(())
    signatures = {tuple(positions) for positions, _ in blocks}
    k = circuit.weight_shape[2]
    used = sorted(
        j for r in blocks[0][0] if r is not None for j in range(r.first, r.first + r.count)
    )
    if len(paulis) != 1 or len(signatures) != 1 or len(blocks) != circuit.n_layers:
        return None
    if used != list(range(k)):  # each weight in exactly one gate
        return None
    return Plan(paulis.pop(), blocks[0][0], tuple(tuple(c) for _, c in blocks))


@dataclass(frozen=True)
class SineForm:
    """A gate kind's entries, in the eigenbasis and transposed, as sin(angles @ weight + offset)
    @ combine: real and imaginary parts (..., 8). Every entry of a rotation gate is a
    trigonometric polynomial of its half angles, a sum over sign vectors s of a sin(s.t / 2) +
    b cos(s.t / 2); `sine_form` fits a and b once from the gate's own matrix. At 4 qubits
    this costs 5 tensor operations per call where the matrix takes about 25."""

    weight: torch.Tensor  # (r, T)
    offset: torch.Tensor  # (1 + r, 1, T): unshifted, then with each angle shifted by pi
    combine: torch.Tensor  # (T, 8)


@functools.lru_cache(maxsize=32)
def sine_form(kind: str, pauli: str) -> SineForm:
    r = gates.KINDS[kind].n_params
    signs = [s for s in itertools.product((-1, 0, 1), repeat=r) if s > (0,) * r]  # one of +-s
    half = torch.tensor(signs, dtype=torch.float64).T / 2  # (r, S)
    weight = torch.cat([half, half, torch.zeros(r, 1, dtype=torch.float64)], 1)
    quarter = torch.full((len(signs) + 1,), math.pi / 2, dtype=torch.float64)
    offset = torch.cat([torch.zeros(len(signs), dtype=torch.float64), quarter])  # sin, cos, 1
    generator = torch.Generator().manual_seed(0)
    samples = torch.rand(16 * weight.shape[1], r, dtype=torch.float64, generator=generator) * 8 - 4
    v = torch.tensor(gates.EIGENVECTORS[pauli], dtype=torch.complex128)
    entries = (v.mH @ gate_matrix(kind, samples) @ v).mT.flatten(-2)
    target = torch.view_as_real(entries).flatten(-2)  # (N, 8)
    combine = torch.linalg.lstsq(torch.sin(samples @ weight + offset), target).solution
    keep = combine.abs().amax(1) > 1e-9
    weight, offset, combine = weight[:, keep], offset[keep], combine[keep]
    shifted = torch.cat([torch.zeros(1, r, dtype=torch.float64), torch.eye(r).double()]) * math.pi
    return SineForm(weight, (offset + shifted @ weight).unsqueeze(1), combine)


@dataclass(frozen=True)
class Tables:
    """Constants of one plan for one device and dtype, made once: per-call copies would cost
    time and, on a GPU, a synchronisation. The fast path keeps states as row vectors, so its
    matrices are transposed."""

    plan: Plan
    constants: tuple[torch.Tensor, ...]  # per constant position, (L, 1, d, d)
    forms: tuple[SineForm, ...]  # per rotation position
    shifted_kron: tuple[torch.Tensor, ...]  # per rotation position, (n, 1 + n r, d * d)
    shifted_index: tuple[torch.Tensor, ...]  # `shifted_kron` over L layers, as `gather_index`
    plain_kron: torch.Tensor  # (n, 1, d * d): the unshifted product
    plain_index: torch.Tensor  # `plain_kron` over L layers
    weight_order: torch.Tensor | None  # flat (n k) weight of each shifted copy; None: in order
    eigen_phase: torch.Tensor  # (n, d): angles @ eigen_phase are the encoding's phases
    angle_gradient: torch.Tensor  # (d, n): -eigen_phase^T, since d exp(i phase) = i exp(i phase)


@functools.lru_cache(maxsize=128)
def tables(circuit: Circuit, device: torch.device, dtype: torch.dtype) -> Tables:
    p, n, d = plan(circuit), circuit.n_qubits, circuit.dim
    layers, k = circuit.n_layers, circuit.weight_shape[2]
    v = torch.tensor(gates.EIGENVECTORS[p.pauli], dtype=torch.complex128)
    w_all = functools.reduce(torch.kron, [v] * n)
    constants = []
    for position in range(sum(r is None for r in p.positions)):
        stack = []
        for layer in range(layers):
            matrix = torch.eye(d, dtype=torch.complex128)
            for index in p.constants[layer][position]:
                matrix = constant_layer(circuit, index, CPU, torch.float64)[0] @ matrix
            last = layer == layers - 1 and position == len(p.constants[layer]) - 1
            # The last block ends in the computational basis, scaled so that the first layer
            # may start from the unnormalised state of all ones (|0...0> in the eigenbasis).
            left = torch.eye(d, dtype=torch.complex128) / math.sqrt(d) if last else w_all.mH
            stack.append((left @ matrix @ w_all).mT)
        constants.append(torch.stack(stack).unsqueeze(1))
    forms, shifted_kron, shifted_index, order = [], [], [], []
    plain = kron_table(n)
    for r in (r for r in p.positions if r is not None):
        variants = torch.zeros(1 + n * r.count, n, dtype=torch.long)
        for w in range(n):
            variants[1 + w * r.count : 1 + (w + 1) * r.count, w] = torch.arange(1, r.count + 1)
        table = kron_table(n, variants)
        form = sine_form(r.kind, p.pauli)
        forms.append(SineForm(*(x.to(device, dtype) for x in dataclasses.astuple(form))))
        shifted_kron.append(table.to(device))
        shifted_index.append(gather_index(table, layers, (1 + r.count) * n * 4).to(device))
        order += [w * k + r.first + j for w in range(n) for j in range(r.count)]
    signs = z_signs(n).to(device, dtype)
    return Tables(
        plan=p,
        constants=tuple(c.to(device, complex_dtype(dtype)) for c in constants),
        forms=tuple(forms),
        shifted_kron=tuple(shifted_kron),
        shifted_index=tuple(shifted_index),
        plain_kron=plain.to(device),
        plain_index=gather_index(plain, layers, n * 4).to(device),
        weight_order=None if order == list(range(n * k)) else torch.tensor(order, device=device),
        eigen_phase=(-signs.T / 2),
        angle_gradient=(signs / 2),
    )


def _block_matrices(t: Tables, weights: torch.Tensor, derivatives: bool) -> torch.Tensor:
    """(L, V, d, d): each block's transposed matrix in the eigenbasis (variant 0), then with
    each weight shifted by pi (twice its derivative), if `derivatives`."""
    layers, n = weights.shape[:2]
    blocks, constant, rotation = None, 0, 0
    for position in t.plan.positions:
        if position is None:
            x = t.constants[constant]
            constant += 1
        else:
            form = t.forms[rotation]
            angles = weights[..., position.first : position.first + position.count]
            offset = form.offset if derivatives else form.offset[:1]
            parts = torch.sin((angles @ form.weight).unsqueeze(1) + offset) @ form.combine
            g = torch.view_as_complex(parts.unflatten(-1, (4, 2)))  # (L, S, n, 4)
            if derivatives:
                x = products(g, t.shifted_kron[rotation], t.shifted_index[rotation])
            else:
                x = products(g, t.plain_kron, t.plain_index)
            x = x.unflatten(-1, (2**n, 2**n))
            rotation += 1
        if blocks is None:
            blocks = x
        elif x.shape[1] == 1 or blocks.shape[1] == 1:
            blocks = blocks @ x
        else:  # shifted copies of the earlier positions, then of this one
            blocks = torch.cat([blocks @ x[:, :1], blocks[:, :1] @ x[:, 1:]], 1)
    return blocks


class Probabilities(torch.autograd.Function):
    """(angles (B, U, n), weights (L, n, k)) -> probabilities (B, 2^n) of the basis states.

    U is L, or 1 when every layer encodes the same angles. States are row vectors in the
    eigenbasis of the encoding until the last layer. The backward pass is the adjoint method;
    it carries h = dL/dRe z - i dL/dIm z for each complex z, which needs no conjugation.
    """

    @staticmethod
    def forward(ctx, angles: torch.Tensor, weights: torch.Tensor, t: Tables) -> torch.Tensor:
        matrices = _block_matrices(t, weights, derivatives=ctx.needs_input_grad[1])
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
            grad_weights = ((matrices[:, 1:].flatten(2) @ h_matrices).real / 2).squeeze(-1)
            order = ctx.tables.weight_order
            if order is not None:
                grad_weights = torch.zeros_like(grad_weights).index_copy(1, order, grad_weights)
            grad_weights = grad_weights.reshape(ctx.weight_shape)
        return grad_angles, grad_weights, None
