"""Circuits as data: a circuit is a list of gate layers, and each ansatz is one entry of `ANSATZES`.

A gate is a kind (`gates.KINDS`), its wires and the source of each of its angles: an encoded
input, a trainable weight [layer, wire, k] or a fixed number. The simulator (both of its
paths), the noise model, the PennyLane QNode, the drawing and the parameter count all read
this one list. Noise acts after every gate layer, as on a device that runs a layer at a time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from lqer.errors import LqerError
from lqer.quantum.gates import KINDS

MAX_QUBITS = 8  # the tables of a Kronecker product grow as 4^n


@dataclass(frozen=True)
class Input:
    """The product of inputs `indices` of the data uploaded before layer `upload`."""

    indices: tuple[int, ...]
    upload: int = 0


@dataclass(frozen=True)
class Weight:
    index: tuple[int, int, int]  # (layer, wire, k) in the layer's weights (L, n, k)


@dataclass(frozen=True)
class Fixed:
    value: float


Source = Input | Weight | Fixed


@dataclass(frozen=True)
class Gate:
    kind: str
    wires: tuple[int, ...]
    params: tuple[Source, ...] = ()


GateLayer = tuple[Gate, ...]

# ---------------------------------------------------------------------------- building blocks
ENCODINGS = {"ry": "RY", "rx": "RX"}
ROTATIONS = {"rot": "Rot", "ry": "RY"}
ENTANGLERS = ("ring", "chain", "none")
GATES = {"cnot": "CNOT", "cz": "CZ"}
READOUTS = ("z", "zz", "probs")


def pairs(n: int, entangler: str) -> tuple[tuple[int, int], ...]:
    """(control, target) pairs of an entangler, applied in order."""
    if entangler == "none" or n == 1:
        return ()
    chain = tuple((i, i + 1) for i in range(n - 1))
    return (*chain, (n - 1, 0)) if entangler == "ring" and n > 2 else chain


def encode(c: Circuit, upload: int, kind: str | None = None) -> GateLayer:
    kind = kind or ENCODINGS[c.encoding]
    return tuple(Gate(kind, (w,), (Input((w,), upload),)) for w in range(c.n_qubits))


def rotate(c: Circuit, layer: int, kind: str) -> GateLayer:
    k = KINDS[kind].n_params
    return tuple(
        Gate(kind, (w,), tuple(Weight((layer, w, j)) for j in range(k))) for w in range(c.n_qubits)
    )


def entangle(c: Circuit, wire_pairs) -> list[GateLayer]:
    return [tuple(Gate(GATES[c.gate], pair) for pair in wire_pairs)] if wire_pairs else []


# ---------------------------------------------------------------------------------- ansatzes
def reuploading(c: Circuit) -> list[GateLayer]:
    """The paper's circuit: encode, rotate, entangle, in every layer."""
    layers = []
    for layer in range(c.n_layers):
        layers += [encode(c, layer), rotate(c, layer, ROTATIONS[c.rotation])]
        layers += entangle(c, pairs(c.n_qubits, c.entangler))
    return layers


def strongly_entangling(c: Circuit) -> list[GateLayer]:
    """qml.StronglyEntanglingLayers with its default ranges, the inputs encoded before each."""
    n, layers = c.n_qubits, []
    for layer in range(c.n_layers):
        reach = layer % (n - 1) + 1 if n > 1 else 0
        layers += [encode(c, layer), rotate(c, layer, "Rot")]
        layers += entangle(c, [(w, (w + reach) % n) for w in range(n)] if n > 1 else [])
    return layers


def basic_entangler(c: Circuit) -> list[GateLayer]:
    """qml.BasicEntanglerLayers (RX rotations, a ring), the inputs encoded before each."""
    layers = []
    for layer in range(c.n_layers):
        layers += [encode(c, layer), rotate(c, layer, "RX")]
        layers += entangle(c, pairs(c.n_qubits, "ring"))
    return layers


def iqp(c: Circuit) -> list[GateLayer]:
    """qml.IQPEmbedding (H, RZ(x_i), ZZ(x_i x_j) on every pair) once, then trainable layers."""
    n = c.n_qubits
    layers = [tuple(Gate("Hadamard", (w,)) for w in range(n)), encode(c, 0, "RZ")]
    products = [
        Gate("MultiRZ", (i, j), (Input((i, j)),)) for i, j in itertools.combinations(range(n), 2)
    ]
    layers += [tuple(products)] if products else []
    for layer in range(c.n_layers):
        layers += [rotate(c, layer, ROTATIONS[c.rotation])]
        layers += entangle(c, pairs(n, c.entangler))
    return layers


@dataclass(frozen=True)
class Ansatz:
    name: str
    build: Callable[[Circuit], list[GateLayer]]
    options: tuple[str, ...]  # the `Circuit` fields it reads besides n_qubits and n_layers
    reference: str  # the PennyLane template it follows, for `lqer circuit --list`


ANSATZES = {
    a.name: a
    for a in (
        Ansatz("reuploading", reuploading, ("encoding", "rotation", "entangler", "gate"),
               "AngleEmbedding + Rot or RY + CNOT/CZ pattern, repeated (the paper's)"),
        Ansatz("strongly-entangling", strongly_entangling, ("encoding", "gate"),
               "AngleEmbedding + StronglyEntanglingLayers, repeated"),
        Ansatz("basic-entangler", basic_entangler, ("encoding", "gate"),
               "AngleEmbedding + BasicEntanglerLayers, repeated"),
        Ansatz("iqp", iqp, ("rotation", "entangler", "gate"),
               "IQPEmbedding once, then Rot or RY + CNOT/CZ pattern layers"),
    )
}  # fmt: skip


# ----------------------------------------------------------------------------------- circuit
@dataclass(frozen=True)
class Circuit:
    """What the circuit is: an ansatz with its options. Its trainable angles live in
    `QuantumLayer.weights` (L, n, k); `layers` is the gate list every consumer reads."""

    n_qubits: int = 4
    n_layers: int = 2
    encoding: str = "ry"
    rotation: str = "rot"
    entangler: str = "ring"
    ansatz: str = "reuploading"
    gate: str = "cnot"  # the entangling gate
    readout: str = "z"

    def __post_init__(self):
        if not 1 <= self.n_qubits <= MAX_QUBITS:
            raise LqerError(
                f"quantum n_qubits must be between 1 and {MAX_QUBITS} (the simulator's tables "
                f"grow as 4^n), got {self.n_qubits}"
            )
        if self.n_layers < 1:
            raise LqerError(f"quantum n_layers must be at least 1, got {self.n_layers}")
        for name, choices in (
            ("ansatz", ANSATZES), ("encoding", ENCODINGS), ("rotation", ROTATIONS),
            ("entangler", ENTANGLERS), ("gate", GATES), ("readout", READOUTS),
        ):  # fmt: skip
            if getattr(self, name) not in choices:
                options = ", ".join(choices)
                raise LqerError(
                    f"quantum {name} must be one of {options}, got {getattr(self, name)!r}"
                )
        if self.readout == "zz" and self.n_qubits < 2:
            raise LqerError("quantum readout zz needs at least 2 qubits")

    @cached_property
    def layers(self) -> tuple[GateLayer, ...]:
        return tuple(ANSATZES[self.ansatz].build(self))

    @property
    def gates(self) -> list[Gate]:
        return [gate for layer in self.layers for gate in layer]

    @property
    def dim(self) -> int:
        return 2**self.n_qubits

    @cached_property
    def weight_shape(self) -> tuple[int, int, int]:
        k = max(p.index[2] + 1 for g in self.gates for p in g.params if isinstance(p, Weight))
        return (self.n_layers, self.n_qubits, k)

    @property
    def n_params(self) -> int:
        return math.prod(self.weight_shape)

    @cached_property
    def n_uploads(self) -> int:
        """How many times the inputs are encoded (data re-uploading)."""
        return 1 + max(p.upload for g in self.gates for p in g.params if isinstance(p, Input))

    @property
    def cnots(self) -> tuple[tuple[int, int], ...]:
        """(control, target) pairs of the `entangler` option."""
        return pairs(self.n_qubits, self.entangler)

    @property
    def n_outputs(self) -> int:
        return len(readout_labels(self))

    def describe_options(self) -> str:
        return ", ".join(f"{o} {getattr(self, o)}" for o in ANSATZES[self.ansatz].options)


def input_sources(circuit: Circuit) -> list[Input]:
    """Every encoded angle of the circuit, in gate order: what the parameter-shift rule shifts."""
    return [p for g in circuit.gates for p in g.params if isinstance(p, Input)]


def readout_labels(circuit: Circuit) -> list[str]:
    n = circuit.n_qubits
    if circuit.readout == "z":
        return [f"<Z{i}>" for i in range(n)]
    if circuit.readout == "zz":
        return [f"<Z{i}Z{j}>" for i, j in itertools.combinations(range(n), 2)]
    return [f"p({k:0{n}b})" for k in range(2**n)]
