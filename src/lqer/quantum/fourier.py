"""A trained circuit as its exact Fourier series in the input angles: real arithmetic only.

An input encoded by gates exp(-i t G / 2), G with eigenvalues +-1 (RX, RY, RZ, MultiRZ), r
times has the integer frequencies -r..r in every expectation value (Schuld, Sweke and Meyer
2021, "Effect of data encoding on the expressive power of variational quantum machine
learning models"). With the weights fixed, the readout is therefore a finite sum
  q(t) = sum over k of c_k prod_w b_{k_w}(t_w),  b = 1, cos t, sin t, ..., cos r t, sin r t,
and the coefficients c follow exactly from the circuit on a grid of prod_w (2 r_w + 1) points.
The series needs only cos, sin, products and a matrix product, which ONNX and every runtime
have; complex numbers, which ONNX lacks, are gone.
"""

from __future__ import annotations

import copy
import itertools
import math

import torch
from torch import nn

from lqer.errors import LqerError
from lqer.quantum.ansatz import Circuit, Input
from lqer.quantum.execution import Execution
from lqer.quantum.layer import QuantumLayer

MAX_TERMS = 4096  # 5^4 = 625 for the paper's 4 qubits and 2 layers
ENCODERS = ("RX", "RY", "RZ", "MultiRZ")  # generators with eigenvalues +-1


def degrees(circuit: Circuit) -> list[int]:
    """How often each input is encoded: the highest frequency of each input."""
    found = [0] * circuit.n_qubits
    for gate in circuit.gates:
        for p in gate.params:
            if isinstance(p, Input):
                if len(p.indices) != 1 or gate.kind not in ENCODERS:
                    raise LqerError(
                        f"the {circuit.ansatz} circuit encodes products of inputs or uses "
                        f"{gate.kind}; only circuits that encode each input in a Pauli rotation "
                        "have a finite Fourier series to export"
                    )
                found[p.indices[0]] += 1
    return found


def basis(angles: torch.Tensor, degree: int) -> torch.Tensor:
    """(B,) angles -> (B, 2 degree + 1): 1, cos t, sin t, cos 2t, sin 2t, ..."""
    terms = [torch.ones_like(angles)]
    for k in range(1, degree + 1):
        terms += [torch.cos(k * angles), torch.sin(k * angles)]
    return torch.stack(terms, dim=1)


class FourierForm(nn.Module):
    """(B, n) angles -> (B, m) readout, as `QuantumLayer` gives it, from its Fourier series."""

    def __init__(self, degrees: list[int], coefficients: torch.Tensor):
        super().__init__()
        self.degrees = list(degrees)
        self.register_buffer("coefficients", coefficients)

    def features(self, angles: torch.Tensor) -> torch.Tensor:
        """(B, P) products of one basis function per input, input 0 the slowest index."""
        out = basis(angles[:, 0], self.degrees[0])
        for w in range(1, len(self.degrees)):
            b = basis(angles[:, w], self.degrees[w])
            out = (out[:, :, None] * b[:, None, :]).flatten(1)
        return out

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        return self.features(angles.to(self.coefficients.dtype)) @ self.coefficients


def fourier_form(layer: QuantumLayer, dtype: torch.dtype = torch.float32) -> FourierForm:
    """The Fourier series of a trained layer's exact (noise included, shots not) readout."""
    degree = degrees(layer.circuit)
    terms = math.prod(2 * r + 1 for r in degree)
    if terms > MAX_TERMS:
        raise LqerError(f"the circuit's Fourier series has {terms} terms, over {MAX_TERMS}")
    exact = copy.deepcopy(layer).double().cpu()
    exact.execution = Execution(noise=layer.execution.noise)  # native, exact expectations
    axes = [torch.arange(2 * r + 1, dtype=torch.float64) * 2 * math.pi / (2 * r + 1)
            for r in degree]  # fmt: skip
    grid = torch.tensor(list(itertools.product(*[a.tolist() for a in axes])), dtype=torch.float64)
    with torch.no_grad():
        values = exact(grid)  # (P, m)
        form = FourierForm(degree, torch.zeros(terms, values.shape[1], dtype=torch.float64))
        coefficients = torch.linalg.solve(form.features(grid), values)
    return FourierForm(degree, coefficients.to(dtype))
