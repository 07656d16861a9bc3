"""How a circuit is run, as opposed to what it is (`ansatz.Circuit`): backend, gradient, shots
and noise. Plain data without PyTorch, so that a configuration can be checked against it."""

from __future__ import annotations

from dataclasses import dataclass, fields

from lqer.errors import LqerError


@dataclass(frozen=True)
class Noise:
    """Per-wire strengths in [0, 1]; all zero is the ideal circuit.

    depolarizing p: rho -> (1 - p) rho + p I/2 on each wire, so p = 1 forgets the state
    completely. (PennyLane's DepolarizingChannel(q) is this channel with p = 4q/3.)
    amplitude_damping g: decay |1> -> |0> with probability g; g = 1 resets the wire to |0>.
    readout_error r: each measured bit is flipped with probability r.
    """

    depolarizing: float = 0.0
    amplitude_damping: float = 0.0
    readout_error: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise LqerError(f"quantum {f.name} must be between 0 and 1, got {value}")

    @property
    def has_gate_noise(self) -> bool:
        return self.depolarizing > 0 or self.amplitude_damping > 0

    @property
    def is_zero(self) -> bool:
        return not self.has_gate_noise and self.readout_error == 0


NO_NOISE = Noise()


GRADS = ("backprop", "parameter-shift")


@dataclass(frozen=True)
class Execution:
    """How the circuit is run, as opposed to what it is (`Circuit`) and what it learnt (weights).

    backend: `native` (the exact PyTorch simulator) or `pennylane[:DEVICE]`.
    grad: `backprop` through the backend, or the `parameter-shift` rule of quantum hardware.
    shots: estimate each expectation from this many seeded measurements; None for exact values.
    noise: gate noise and readout error; see `Noise`.
    """

    backend: str = "native"
    grad: str = "backprop"
    shots: int | None = None
    noise: Noise = NO_NOISE
    seed: int = 0

    def __post_init__(self):
        if self.backend != "native":
            device_name(self.backend)  # checks the spelling; the device is checked on use
        if self.grad not in GRADS:
            raise LqerError(f"quantum grad must be one of {', '.join(GRADS)}, got {self.grad!r}")
        if self.shots is not None and self.shots < 1:
            raise LqerError(f"quantum shots must be a positive number, got {self.shots}")


def device_name(backend: str) -> str:
    """`pennylane` -> default.qubit, `pennylane:lightning.qubit` -> lightning.qubit."""
    name, _, device = backend.partition(":")
    if name != "pennylane":
        raise LqerError(f"quantum backend must be native or pennylane[:DEVICE], got {backend!r}")
    return device or "default.qubit"
