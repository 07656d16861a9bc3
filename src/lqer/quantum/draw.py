"""The circuit as text, with its size: what `lqer circuit` prints. Needs nothing but Python."""

from __future__ import annotations

from lqer.quantum.layer import Execution
from lqer.quantum.simulator import Circuit

Gate = tuple[str, tuple[int, ...]]  # (label, wires); a CNOT's wires are (control, target)


def gate_layers(circuit: Circuit) -> list[list[Gate]]:
    """Encoding, rotations and entangler of every layer, in order; the noise model's unit."""
    n, encode = range(circuit.n_qubits), circuit.encoding.upper()
    rotate = "Rot" if circuit.rotation == "rot" else "RY"
    layers = []
    for layer in range(circuit.n_layers):
        layers.append([(f"{encode}(x{w})", (w,)) for w in n])
        layers.append([(f"{rotate}(θ{layer},{w})", (w,)) for w in n])
        if circuit.cnots:
            layers.append([("CNOT", pair) for pair in circuit.cnots])
    return layers


def depth(circuit: Circuit) -> int:
    """Number of time steps when every gate runs as early as its wires allow."""
    ready = [0] * circuit.n_qubits
    for layer in gate_layers(circuit):
        for _, wires in layer:
            step = max(ready[w] for w in wires) + 1
            for w in wires:
                ready[w] = step
    return max(ready)


def _columns(circuit: Circuit) -> list[dict[int, str]]:
    """One column per single-qubit gate layer and per CNOT: wire -> symbol."""
    columns = []
    for layer in gate_layers(circuit):
        if layer[0][0] != "CNOT":
            columns.append({wires[0]: label for label, wires in layer})
            continue
        for _, (control, target) in layer:
            low, high = sorted((control, target))
            column = {w: "┼" for w in range(low + 1, high)}
            columns.append({**column, control: "●", target: "⊕"})
    return columns


def draw(circuit: Circuit) -> str:
    """Wires as lines, gates as labels; x are the encoded inputs, θ the trainable weights."""
    lines = [f"{w}: ─" for w in range(circuit.n_qubits)]
    for column in _columns(circuit):
        width = max(len(s) for s in column.values())
        for w in range(circuit.n_qubits):
            lines[w] += column.get(w, "").center(width, "─") + "──"
    return "\n".join(line + "┤ <Z>" for line in lines)


def describe(circuit: Circuit, execution: Execution | None = None) -> str:
    """The drawing with the circuit's parameter count, gate count, depth and execution settings."""
    n_layers, n_qubits, k = circuit.weight_shape
    rotate = "Rot" if circuit.rotation == "rot" else "RY"
    gates = (
        f"{n_layers * n_qubits} {circuit.encoding.upper()} (encoding), "
        f"{n_layers * n_qubits} {rotate} (trainable), {n_layers * len(circuit.cnots)} CNOT"
    )
    ex = execution or Execution()
    noise = ex.noise
    noise_text = "none" if noise.is_zero else (
        f"depolarizing {noise.depolarizing}, amplitude damping {noise.amplitude_damping}, "
        f"readout error {noise.readout_error}"
    )  # fmt: skip
    return "\n".join(
        [
            f"{circuit.n_qubits} qubits, {circuit.n_layers} layers of data re-uploading, "
            f"{circuit.encoding.upper()} encoding, {circuit.rotation} rotations, "
            f"{circuit.entangler} entangler",
            "",
            draw(circuit),
            "",
            f"trainable parameters: {circuit.n_params} "
            f"({n_layers} layers x {n_qubits} qubits x {k})",
            f"encoded inputs: {circuit.n_qubits} angles x, each uploaded in all {n_layers} layers",
            f"gates: {gates}",
            f"depth: {depth(circuit)}",
            f"backend: {ex.backend}, gradient: {ex.grad}, "
            f"shots: {ex.shots or 'exact'}, noise: {noise_text}",
        ]
    )
