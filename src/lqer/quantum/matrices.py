"""Each gate kind's complex matrix as a function of its parameters, in PyTorch.

Every parameter is the angle t of a Pauli rotation exp(-i t P / 2) (see `gates`), so the
derivative of a gate by it is the same gate at t + pi, halved.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _stack(entries: list[list[torch.Tensor]]) -> torch.Tensor:
    return torch.stack([torch.stack(row, -1) for row in entries], -2)


def _phase(t: torch.Tensor) -> torch.Tensor:
    return torch.polar(torch.ones_like(t), t)


def _rx(p: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(p[..., 0] / 2), torch.sin(p[..., 0] / 2)
    c, s = torch.complex(c, 0 * c), torch.complex(0 * s, -s)
    return _stack([[c, s], [s, c]])


def _ry(p: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(p[..., 0] / 2), torch.sin(p[..., 0] / 2)
    c, s = torch.complex(c, 0 * c), torch.complex(s, 0 * s)
    return _stack([[c, -s], [s, c]])


def _rz(p: torch.Tensor) -> torch.Tensor:
    e = _phase(-p[..., 0] / 2)
    zero = torch.zeros_like(e)
    return _stack([[e, zero], [zero, e.conj()]])


def _rot(p: torch.Tensor) -> torch.Tensor:
    """Rot(phi, theta, omega) = RZ(omega) RY(theta) RZ(phi), as in PennyLane."""
    phi, theta, omega = p.unbind(-1)
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    plus, minus = _phase(-(phi + omega) / 2), _phase((phi - omega) / 2)
    return _stack([[plus * c, -minus * s], [minus.conj() * s, plus.conj() * c]])


def _multi_rz(p: torch.Tensor) -> torch.Tensor:
    """exp(-i t Z Z / 2) on two wires."""
    e = _phase(-p[..., 0] / 2)
    return torch.diag_embed(torch.stack([e, e.conj(), e.conj(), e], -1))


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def _constant(rows) -> Callable[[torch.Tensor], torch.Tensor]:
    fixed = torch.tensor(rows, dtype=torch.complex128)

    def matrix(p: torch.Tensor) -> torch.Tensor:
        return fixed.to(p.device, complex_dtype(p.dtype)).expand(*p.shape[:-1], *fixed.shape)

    return matrix


R = 1 / math.sqrt(2)
MATRICES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "RX": _rx,
    "RY": _ry,
    "RZ": _rz,
    "Rot": _rot,
    "MultiRZ": _multi_rz,
    "Hadamard": _constant([[R, R], [R, -R]]),
    "CNOT": _constant([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]),
    "CZ": _constant([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, -1]]),
}  # the kinds of `gates.KINDS`, checked by tests/test_quantum.py


def gate_matrix(kind: str, params: torch.Tensor) -> torch.Tensor:
    """Complex matrices (..., 2^k, 2^k) of gates of `kind` with parameters (..., n_params)."""
    return MATRICES[kind](params)
