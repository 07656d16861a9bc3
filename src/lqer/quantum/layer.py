"""`QuantumLayer`: the circuit as a torch module, in the spirit of PennyLane's TorchLayer."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
from torch import nn

from lqer.errors import LqerError
from lqer.quantum import noise, simulator
from lqer.quantum.ansatz import Circuit
from lqer.quantum.execution import Execution, device_name
from lqer.quantum.shift import parameter_shift
from lqer.quantum.tensors import gate_inputs


class QuantumLayer(nn.Module):
    """Maps rotation angles (B, n) to the circuit's readout (B, m), by default <Z> of each wire.

    The same angles are encoded again in every layer (data re-uploading). The circuit runs in
    float32 or float64 even under autocast: low precision buys nothing at 2^n amplitudes.
    Assign `execution` (or use `executing`) to change backend, gradient, shots or noise of a
    trained layer; this also restarts its shot sampler from the seed. `backend=` is shorthand
    for an `Execution` that differs only in its backend.
    """

    def __init__(
        self, circuit: Circuit, execution: Execution | None = None, *, backend: str | None = None
    ):
        super().__init__()
        self.circuit = circuit
        self.weights = nn.Parameter(simulator.init_weights(circuit))
        execution = execution or Execution()
        if backend is not None:
            execution = dataclasses.replace(execution, backend=backend)
        self.execution = execution

    @property
    def execution(self) -> Execution:
        return self._execution

    @execution.setter
    def execution(self, execution: Execution) -> None:
        self._execution = execution
        self.reseed(execution.seed)

    def reseed(self, seed: int) -> None:
        """Restart the shot sampler (and a PennyLane device's) from `seed`."""
        self._seed = seed
        self._generator = torch.Generator().manual_seed(seed)
        self._qnode = None  # built on first use, with this seed

    @property
    def out_features(self) -> int:
        return self.circuit.n_outputs

    def forward(self, angles: torch.Tensor) -> torch.Tensor:
        with torch.autocast(angles.device.type, enabled=False):
            uploads = angles.to(self.weights.dtype).unsqueeze(1)  # the same in every layer
            if self.execution.grad == "parameter-shift":  # shifts each input gate on its own
                return parameter_shift(
                    self.measure, gate_inputs(self.circuit, uploads), self.weights
                )
            return self.measure(uploads, self.weights)

    def measure(self, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The readout (B, m) as the configured device reports it, for angles as uploads
        (B, U, n) or per input gate (B, G); see `simulator`.

        With shots and backprop, the value is the finite-sample estimate and the gradient is
        that of the exact expectation (a straight-through estimator).
        """
        ex = self.execution
        if ex.backend != "native":
            return self._pennylane(angles, weights)
        probs = noise.probabilities(self.circuit, angles, weights, ex.noise)
        readout = simulator.readout_table(self.circuit, probs.device, probs.dtype)
        exact = probs @ readout
        if ex.shots is None:
            return exact
        sampled = noise.sample_frequencies(probs, ex.shots, self._generator) @ readout
        return exact + (sampled - exact).detach()

    def _pennylane(self, angles: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        from lqer.quantum import pennylane_circuit as pl

        ex, per_gate = self.execution, angles.dim() == 2
        if self._qnode is None or self._qnode[0] != per_gate:
            device = device_name(ex.backend)
            qnode = pl.make_qnode(
                self.circuit, device, "best", ex.noise, ex.shots, self._seed, per_gate
            )
            self._qnode = (per_gate, qnode)
        try:
            out = self._qnode[1](angles, weights)
        except LqerError:
            raise
        except Exception as e:  # e.g. channels on a pure-state device
            hint = "" if ex.noise.is_zero else "; noise needs e.g. pennylane:default.mixed"
            raise LqerError(f"quantum backend {ex.backend!r} failed: {e}{hint}") from None
        return pl.stack_outputs(out, angles.dtype)

    def __getstate__(self):
        return {**self.__dict__, "_qnode": None}  # a QNode need not survive a copy

    def extra_repr(self) -> str:
        c, ex = self.circuit, self.execution
        return (
            f"n_qubits={c.n_qubits}, n_layers={c.n_layers}, ansatz={c.ansatz} "
            f"({c.describe_options()}), readout={c.readout}, backend={ex.backend}, "
            f"grad={ex.grad}, shots={ex.shots}, noise={ex.noise}"
        )


def quantum_layers(model: nn.Module) -> list[QuantumLayer]:
    return [m for m in model.modules() if isinstance(m, QuantumLayer)]


@contextlib.contextmanager
def executing(model: nn.Module, **changes) -> Iterator[None]:
    """Run every QuantumLayer in `model` with some `Execution` fields changed, then restore.

    For example `with executing(model, shots=1000, noise=Noise(depolarizing=0.05)): ...`
    scores a trained model as a noisy device would run it.
    """
    layers = quantum_layers(model)
    saved = [layer.execution for layer in layers]
    try:
        for layer in layers:
            layer.execution = dataclasses.replace(layer.execution, **changes)
        yield
    finally:
        for layer, execution in zip(layers, saved, strict=True):
            layer.execution = execution
