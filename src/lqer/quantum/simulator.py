"""Exact, batched state-vector simulation of any `Circuit` in plain PyTorch.

Wire 0 is the most significant bit of a basis index, as in PennyLane. Circuit functions take
`angles` either as uploads (B, U, n), the data encoded before each layer (U = 1 when every
layer encodes the same data), or as the angle of every input gate (B, G), which is what the
parameter-shift rule shifts.

Two paths read the circuit's one gate list:

- The general path multiplies one 2^n x 2^n matrix per gate layer and leaves the gradients to
  autograd. It runs every circuit, and the noise model shares its layer matrices.
- The fast path (`lqer.quantum.fast_path`) runs the circuits that alternate an encoding with
  a block of gates, as every re-uploading ansatz does: one autograd function with a written-out
  adjoint backward pass, in the eigenbasis of the encoding.
"""

from __future__ import annotations

import functools
import math

import torch

from lqer.quantum.ansatz import Circuit, Gate
from lqer.quantum.fast_path import Probabilities, plan, tables
from lqer.quantum.matrices import complex_dtype
from lqer.quantum.tensors import readout_matrix
from lqer.quantum.unitaries import layer_unitaries


def final_state(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """State after the circuit, complex (B, 2^n), by the general path."""
    batch = angles.shape[0]
    state = torch.zeros(batch, circuit.dim, 1, dtype=complex_dtype(weights.dtype),
                        device=weights.device)  # fmt: skip
    state[:, 0] = 1
    for unitary in layer_unitaries(circuit, angles, weights):
        state = unitary @ state
    return state.squeeze(-1)


def probabilities(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Probability of each basis state, (B, 2^n); angles as uploads or per input gate."""
    if plan(circuit) is not None:
        if angles.dim() == 2:  # the fast path's input gates are its uploads, layer by layer
            angles = angles.view(angles.shape[0], circuit.n_layers, circuit.n_qubits)
        return Probabilities.apply(angles, weights, tables(circuit, angles.device, angles.dtype))
    state = final_state(circuit, angles, weights)
    return torch.view_as_real(state).square().sum(-1)


@functools.lru_cache(maxsize=128)
def readout_table(circuit: Circuit, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return readout_matrix(circuit).to(device, dtype)


def expectations(circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The circuit's readout (B, m): by default the Pauli-Z expectation of each wire."""
    probs = probabilities(circuit, angles, weights)
    return probs @ readout_table(circuit, probs.device, probs.dtype)


def init_weights(circuit: Circuit, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform angles in [0, 2 pi), PennyLane TorchLayer's default."""
    return torch.rand(circuit.weight_shape, generator=generator) * (2 * math.pi)


__all__ = ["Circuit", "Gate", "expectations", "final_state", "probabilities"]
