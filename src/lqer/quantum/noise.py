"""What a real device adds to the ideal circuit: gate noise, readout error and shot noise.

Gate noise is simulated exactly with density matrices (16 x 16 at 4 qubits): after each gate
layer of the circuit (say the encoding, the trainable rotations, the entangler) every wire
goes through a depolarising channel and then an amplitude-damping channel. Readout error flips
each measured bit classically. Shot noise replaces the exact distribution by the frequencies
of N samples.
"""

from __future__ import annotations

import functools
import math

import torch

from lqer.quantum import simulator
from lqer.quantum.ansatz import Circuit
from lqer.quantum.execution import Noise
from lqer.quantum.unitaries import kron, layer_unitaries


def single_wire_channel(noise: Noise) -> torch.Tensor:
    """(2, 2, 2, 2) superoperator S[i', j', i, j] of depolarising followed by amplitude damping."""
    p, g = noise.depolarizing, noise.amplitude_damping
    eye = torch.eye(2, dtype=torch.float64)
    depolarize = (1 - p) * torch.einsum("ai,bj->abij", eye, eye)
    depolarize += p / 2 * torch.einsum("ab,ij->abij", eye, eye)
    kraus = torch.tensor(
        [[[1, 0], [0, math.sqrt(1 - g)]], [[0, math.sqrt(g)], [0, 0]]], dtype=torch.float64
    )
    damp = torch.einsum("kai,kbj->abij", kraus, kraus)
    return torch.einsum("abij,ijcd->abcd", damp, depolarize)


def _on_wire(rho: torch.Tensor, channel: torch.Tensor, wire: int, n: int) -> torch.Tensor:
    """Apply a single-wire superoperator (2, 2, 2, 2) to density matrices (..., d, d)."""
    left, right = 2**wire, 2 ** (n - 1 - wire)
    view = rho.reshape(-1, left, 2, right, left, 2, right)
    out = torch.einsum("abij,kxiyzjw->kxayzbw", channel.to(rho.dtype), view)
    return out.reshape(rho.shape)


@functools.lru_cache(maxsize=64)
def channel_matrix(
    circuit: Circuit, noise: Noise, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """(d^2, d^2) matrix M with vec(N(rho)) = vec(rho) @ M for the noise on all wires at once.

    Built by sending every basis matrix through the channel wire by wire, once per setting, so
    that each gate layer's noise costs a single matrix product.
    """
    n, d = circuit.n_qubits, circuit.dim
    channel = single_wire_channel(noise)
    basis = torch.eye(d * d, dtype=torch.float64).view(d * d, d, d)
    for wire in range(n):
        basis = _on_wire(basis, channel, wire, n)
    return basis.reshape(d * d, d * d).to(device, dtype)


def density_matrix(
    circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor, noise: Noise
) -> torch.Tensor:
    """(B, 2^n, 2^n) state after the noisy circuit; angles as in `simulator`."""
    batch, d = angles.shape[0], circuit.dim
    unitaries = layer_unitaries(circuit, angles, weights)
    dtype = unitaries[0].dtype
    noisy = channel_matrix(circuit, noise, weights.device, weights.dtype).to(dtype)
    rho = torch.zeros(batch, d, d, dtype=dtype, device=weights.device)
    rho[:, 0, 0] = 1
    for u in unitaries:
        rho = u @ rho @ u.mH
        rho = (rho.reshape(batch, d * d) @ noisy).view(batch, d, d)
    return rho


def readout(circuit: Circuit, probs: torch.Tensor, error: float) -> torch.Tensor:
    """Distribution of the read-out bits when each measured bit flips with probability `error`."""
    if error == 0:
        return probs
    flip = torch.tensor([[1 - error, error], [error, 1 - error]], dtype=probs.dtype)
    confusion = kron(flip.to(probs.device).expand(circuit.n_qubits, 2, 2))
    return probs @ confusion  # symmetric, so no transpose is needed


def probabilities(
    circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor, noise: Noise
) -> torch.Tensor:
    """(B, 2^n) distribution of measured bit strings; the state-vector result without gate noise."""
    if noise.has_gate_noise:
        rho = density_matrix(circuit, angles, weights, noise)
        probs = torch.diagonal(rho, dim1=1, dim2=2).real
    else:
        probs = simulator.probabilities(circuit, angles, weights)
    return readout(circuit, probs, noise.readout_error)


def expectations(
    circuit: Circuit, angles: torch.Tensor, weights: torch.Tensor, noise: Noise
) -> torch.Tensor:
    """The circuit's readout under noise, (B, m)."""
    probs = probabilities(circuit, angles, weights, noise)
    return probs @ simulator.readout_table(circuit, probs.device, probs.dtype)


def sample_frequencies(
    probs: torch.Tensor, shots: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Frequencies of `shots` measurements drawn from each row of `probs` (B, d).

    Drawn on the CPU in float64 as a chain of binomials, so the cost does not grow with `shots`
    and a seeded generator gives the same draws on any device.
    """
    p = probs.detach().to("cpu", torch.float64).clamp(min=0)
    p = p / p.sum(1, keepdim=True)
    remaining = torch.full_like(p[:, 0], float(shots))
    mass_left = torch.ones_like(p[:, 0])
    counts = torch.zeros_like(p)
    for k in range(p.shape[1] - 1):
        share = torch.where(mass_left > 0, p[:, k] / mass_left, 1.0).clamp(0, 1)
        counts[:, k] = torch.binomial(remaining, share, generator=generator)
        remaining -= counts[:, k]
        mass_left -= p[:, k]
    counts[:, -1] = remaining
    return (counts / shots).to(probs.device, probs.dtype)
