"""A circuit's description as tensors: which input angle feeds each gate, and the matrix that
turns basis-state probabilities into the readout. The simulator and the layer read these."""

from __future__ import annotations

import functools
import itertools

import torch

from lqer.quantum.ansatz import Circuit, input_sources


@functools.lru_cache(maxsize=128)
def _input_index(circuit: Circuit, uploads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each input gate's upload (G,) and inputs (G, arity), padded with n, the column of ones."""
    sources = input_sources(circuit)
    arity = max(len(s.indices) for s in sources)
    upload = torch.tensor([min(s.upload, uploads - 1) for s in sources])
    padded = [[*s.indices, *[circuit.n_qubits] * (arity - len(s.indices))] for s in sources]
    return upload, torch.tensor(padded)


def gate_inputs(circuit: Circuit, uploads: torch.Tensor) -> torch.Tensor:
    """(B, G) encoded angles of the G input gates, from uploads (B, U, n), U = n_uploads or 1
    when every upload is the same data."""
    upload, inputs = (t.to(uploads.device) for t in _input_index(circuit, uploads.shape[1]))
    if inputs.shape[1] == 1:
        return uploads[:, upload, inputs[:, 0]]
    padded = torch.nn.functional.pad(uploads, (0, 1), value=1.0)
    return padded[:, upload[:, None], inputs].prod(-1)


def z_signs(n: int) -> torch.Tensor:
    """(2^n, n) Pauli-Z eigenvalue of each wire in each basis state, wire 0 the top bit."""
    index = torch.arange(2**n)[:, None]
    return 1.0 - 2.0 * ((index >> (n - 1 - torch.arange(n)[None, :])) & 1).double()


def readout_matrix(circuit: Circuit) -> torch.Tensor:
    """(2^n, m) real matrix R: the readout of basis-state probabilities p is p @ R, since each
    readout is a diagonal observable. z: <Z_i>; zz: <Z_i Z_j> for i < j; probs: p itself."""
    n, z = circuit.n_qubits, z_signs(circuit.n_qubits)
    if circuit.readout == "z":
        return z
    if circuit.readout == "zz":
        return torch.stack([z[:, i] * z[:, j] for i, j in itertools.combinations(range(n), 2)], 1)
    return torch.eye(2**n, dtype=torch.float64)
