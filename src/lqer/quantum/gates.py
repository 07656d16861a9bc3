"""The gate kinds a circuit may use, named as PennyLane names them, each with its matrix.

Every parameter of these gates is the angle t of a Pauli rotation exp(-i t P / 2), so the
derivative of a gate by it is the same gate at t + pi, halved, and the parameter-shift rule
is exact. The simulator's fast path and the noise model rely on this.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Kind:
    n_params: int
    n_wires: int
    matrix: Callable[[torch.Tensor], torch.Tensor]  # params (..., n_params) -> (..., 2^k, 2^k)
    pauli: str | None = None  # P of a one-parameter, one-wire rotation exp(-i t P / 2)
    symbol: str = ""  # how `lqer circuit` draws it; the name if empty


R = 1 / math.sqrt(2)
KINDS = {
    "RX": Kind(1, 1, _rx, pauli="X"),
    "RY": Kind(1, 1, _ry, pauli="Y"),
    "RZ": Kind(1, 1, _rz, pauli="Z"),
    "Rot": Kind(3, 1, _rot),
    "MultiRZ": Kind(1, 2, _multi_rz, symbol="ZZ"),
    "Hadamard": Kind(0, 1, _constant([[R, R], [R, -R]]), symbol="H"),
    "CNOT": Kind(0, 2, _constant([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])),
    "CZ": Kind(0, 2, _constant([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, -1]])),
}

# Eigenvectors (columns) of each rotation's Pauli operator, eigenvalue +1 first.
EIGENVECTORS = {"X": ((R, R), (R, -R)), "Y": ((R, R), (R * 1j, -R * 1j))}


def matrix(kind: str, params: torch.Tensor) -> torch.Tensor:
    """Complex matrices (..., 2^k, 2^k) of gates of `kind` with parameters (..., n_params)."""
    return KINDS[kind].matrix(params)
