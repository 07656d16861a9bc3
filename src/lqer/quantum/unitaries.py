"""The matrices of a circuit's gate layers, for the simulator's general path and the noise
model: each layer one (b, 2^n, 2^n) matrix, built from batched Kronecker products of its gates.
"""

from __future__ import annotations

import functools

import torch

from lqer.quantum.ansatz import Circuit, Fixed, GateLayer, Input, Weight, input_sources
from lqer.quantum.matrices import complex_dtype, gate_matrix
from lqer.quantum.tensors import gate_inputs

# ------------------------------------------------------------------- Kronecker products


def kron_table(n: int, variants: torch.Tensor | None = None) -> torch.Tensor:
    """(n, V, 4^n) index table of Kronecker products of gates (S, n, 4): wire w of product v
    and entry (i, j) read gate entry 4 (n s + w) + 2 i_w + j_w, where s = variants[v, w]."""
    wires = torch.arange(n)[:, None, None]
    index = torch.arange(4**n)[None, None, :]
    i, j = index // 2**n, index % 2**n
    entry = 2 * ((i >> (n - 1 - wires)) & 1) + ((j >> (n - 1 - wires)) & 1)
    if variants is None:
        variants = torch.zeros(1, n, dtype=torch.long)
    return 4 * (n * variants.T[:, :, None] + wires) + entry


def gather_index(table: torch.Tensor, rows: int, row_size: int) -> torch.Tensor:
    """`table` (n, V, D) for each of `rows` rows of `row_size` gate entries, as one flat index:
    a 1-D gather is several times faster than one along the columns of a matrix."""
    offsets = torch.arange(0, rows * row_size, row_size, device=table.device)
    return (table.unsqueeze(1) + offsets[:, None, None]).flatten()


def products(entries: torch.Tensor, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Kronecker products (..., V, D) of gate entries (..., S, n, 4), read off via `table`
    through its `gather_index`."""
    n, variants, size = table.shape
    picked = entries.reshape(-1).index_select(0, index).view(n, -1, variants, size)
    return picked.prod(0).view(*entries.shape[:-3], variants, size)


@functools.lru_cache(maxsize=32)
def _plain_kron(n: int, device: torch.device) -> torch.Tensor:
    return kron_table(n).to(device)


def kron(gate_matrices: torch.Tensor) -> torch.Tensor:
    """(..., 2^n, 2^n) product of one gate per wire, (..., n, 2, 2); wire 0 first."""
    *batch, n, _, _ = gate_matrices.shape
    table = _plain_kron(n, gate_matrices.device)
    entries = gate_matrices.flatten(-2).unsqueeze(-3)  # (..., 1, n, 4)
    rows = entries.numel() // entries.shape[-2:].numel()
    product = products(entries, table, gather_index(table, rows, 4 * n))
    return product.view(*batch, 2**n, 2**n)


def embed(matrix: torch.Tensor, wires: tuple[int, ...], n: int) -> torch.Tensor:
    """(b, 2^n, 2^n) matrix of a gate (b, 2^k, 2^k) on `wires`, identity elsewhere."""
    b, k = matrix.shape[0], len(wires)
    eye = torch.eye(2 ** (n - k), dtype=matrix.dtype, device=matrix.device)
    full = torch.einsum("bij,kl->bikjl", matrix, eye).reshape(b, *[2] * (2 * n))
    order = [*wires, *(w for w in range(n) if w not in wires)]  # the axes' wires now
    axes = [1 + order.index(w) for w in range(n)]
    return full.permute(0, *axes, *(a + n for a in axes)).reshape(b, 2**n, 2**n)


# ------------------------------------------------------------------------- general path


def _fixed_values(circuit: Circuit) -> tuple[float, ...]:
    return tuple(sorted({p.value for g in circuit.gates for p in g.params if isinstance(p, Fixed)}))


@functools.lru_cache(maxsize=128)
def _parameter_columns(circuit: Circuit) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """Per gate layer, per gate, where each parameter is read in `_parameter_table`."""
    inputs, fixed = len(input_sources(circuit)), _fixed_values(circuit)
    _, n, k = circuit.weight_shape
    position, out = 0, []
    for layer in circuit.layers:
        out.append([])
        for g in layer:
            columns = []
            for p in g.params:
                if isinstance(p, Input):
                    columns.append(position)
                    position += 1
                elif isinstance(p, Weight):
                    columns.append(inputs + (p.index[0] * n + p.index[1]) * k + p.index[2])
                else:
                    columns.append(inputs + circuit.n_params + fixed.index(p.value))
            out[-1].append(tuple(columns))
    return tuple(tuple(layer) for layer in out)


def _parameter_table(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor):
    """(B, columns): input gates' angles, the weights, the fixed numbers; each gate layer then
    reads its parameters with one gather."""
    fixed = torch.tensor(_fixed_values(circuit), dtype=weights.dtype, device=weights.device)
    parts = [angles.to(weights.dtype), weights.reshape(1, -1), fixed.unsqueeze(0)]
    return torch.cat([part.expand(angles.shape[0], -1) for part in parts], 1)


def is_constant(layer: GateLayer) -> bool:
    return all(isinstance(p, Fixed) for g in layer for p in g.params)


@functools.lru_cache(maxsize=256)
def _kind_groups(
    circuit: Circuit, index: int
) -> tuple[tuple[str, tuple[int, ...], torch.Tensor], ...]:
    """Gate layer `index`'s gates by kind: (kind, their places in the layer, the
    `_parameter_table` columns of their parameters (g, n_params)), made once per circuit."""
    layer, columns = circuit.layers[index], _parameter_columns(circuit)[index]
    groups = []
    for kind in dict.fromkeys(g.kind for g in layer):
        members = tuple(i for i, g in enumerate(layer) if g.kind == kind)
        table = torch.tensor([columns[i] for i in members], dtype=torch.long)
        groups.append((kind, members, table.view(len(members), -1)))
    return tuple(groups)


def _layer_matrix(circuit: Circuit, index: int, rows: torch.Tensor) -> torch.Tensor:
    """(b, 2^n, 2^n) matrix of gate layer `index`, its parameters read from `rows`
    (b, columns); the gates of one kind are computed together."""
    layer, n = circuit.layers[index], circuit.n_qubits
    mats = [None] * len(layer)
    for kind, members, columns in _kind_groups(circuit, index):
        group = gate_matrix(kind, rows[:, columns.to(rows.device)])  # (b, g, 2^k, 2^k)
        if len(members) == n == len(layer) and all(layer[i].wires == (i,) for i in members):
            return kron(group)  # the commonest layer: one kind on every wire, in order
        for j, i in enumerate(members):
            mats[i] = group[:, j]
    wires = [w for g in layer for w in g.wires]
    if all(len(g.wires) == 1 for g in layer) and len(set(wires)) == len(wires):
        batch = max(m.shape[0] for m in mats)
        eye = torch.eye(2, dtype=mats[0].dtype, device=mats[0].device).expand(batch, 2, 2)
        per_wire = {g.wires[0]: m.expand(batch, 2, 2) for g, m in zip(layer, mats, strict=True)}
        return kron(torch.stack([per_wire.get(w, eye) for w in range(n)], 1))
    unitary = None
    for g, m in zip(layer, mats, strict=True):
        full = embed(m, g.wires, n)
        unitary = full if unitary is None else full @ unitary
    return unitary


@functools.lru_cache(maxsize=256)
def constant_layer(
    circuit: Circuit, index: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    inputs = torch.zeros(1, len(input_sources(circuit)), dtype=torch.float64)
    rows = _parameter_table(circuit, inputs, torch.zeros(circuit.weight_shape).double())
    return _layer_matrix(circuit, index, rows).to(device, complex_dtype(dtype))


def layer_unitaries(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> list:
    """The (b, 2^n, 2^n) matrix of every gate layer, b = B where it encodes data, else 1."""
    table = _parameter_table(circuit, gate_angles(circuit, angles), weights)
    out = []
    for index, layer in enumerate(circuit.layers):
        if is_constant(layer):
            out.append(constant_layer(circuit, index, weights.device, weights.dtype))
            continue
        encodes = any(isinstance(p, Input) for g in layer for p in g.params)
        out.append(_layer_matrix(circuit, index, table if encodes else table[:1]))
    return out


def gate_angles(circuit: Circuit, angles: torch.Tensor) -> torch.Tensor:
    """Angles (B, G) of the input gates, from uploads (B, U, n) or as given."""
    return gate_inputs(circuit, angles) if angles.dim() == 3 else angles
