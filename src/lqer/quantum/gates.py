"""The gate kinds a circuit may use, named as PennyLane names them: what each gate is, without
PyTorch, so that the configuration can name them cheaply. Their matrices are in `matrices`.

Every parameter of these gates is the angle t of a Pauli rotation exp(-i t P / 2), so the
derivative of a gate by it is the same gate at t + pi, halved, and the parameter-shift rule
is exact. The simulator's fast path and the noise model rely on this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    n_params: int
    n_wires: int
    pauli: str | None = None  # P of a one-parameter, one-wire rotation exp(-i t P / 2)
    symbol: str = ""  # how `lqer circuit` draws it; the name if empty


KINDS = {
    "RX": Kind(1, 1, pauli="X"),
    "RY": Kind(1, 1, pauli="Y"),
    "RZ": Kind(1, 1, pauli="Z"),
    "Rot": Kind(3, 1),
    "MultiRZ": Kind(1, 2, symbol="ZZ"),
    "Hadamard": Kind(0, 1, symbol="H"),
    "CNOT": Kind(0, 2),
    "CZ": Kind(0, 2),
}

R = 1 / math.sqrt(2)
# Eigenvectors (columns) of each rotation's Pauli operator, eigenvalue +1 first.
EIGENVECTORS = {"X": ((R, R), (R, -R)), "Y": ((R, R), (R * 1j, -R * 1j))}
