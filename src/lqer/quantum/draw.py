"""The circuit as text, with its size: what `lqer circuit` prints. Needs nothing but Python."""

from __future__ import annotations

from collections import Counter

from lqer.quantum.ansatz import ANSATZES, Circuit, Gate, Input, Weight, readout_labels
from lqer.quantum.execution import Execution
from lqer.quantum.fast_path import plan
from lqer.quantum.gates import KINDS


def depth(circuit: Circuit) -> int:
    """Number of time steps when every gate runs as early as its wires allow."""
    ready = [0] * circuit.n_qubits
    for gate in circuit.gates:
        step = max(ready[w] for w in gate.wires) + 1
        for w in gate.wires:
            ready[w] = step
    return max(ready)


def role(gate: Gate) -> str:
    if any(isinstance(p, Input) for p in gate.params):
        return "encoding"
    return "trainable" if any(isinstance(p, Weight) for p in gate.params) else "fixed"


def label(gate: Gate) -> str:
    """RY(x0), Rot(θ1,2) for the weights [1, 2, :], ZZ(x0·x1), H."""
    name = KINDS[gate.kind].symbol or gate.kind
    args = []
    for p in gate.params:
        if isinstance(p, Input):
            args.append("·".join(f"x{i}" for i in p.indices))
        elif isinstance(p, Weight):
            args.append(f"θ{p.index[0]},{p.index[1]}")
        else:
            args.append(f"{p.value:g}")
    args = list(dict.fromkeys(args))  # Rot's three weights share one label
    return f"{name}({','.join(args)})" if args else name


def _columns(circuit: Circuit) -> list[dict[int, str]]:
    """One column per layer of one-wire gates and per multi-wire gate: wire -> symbol."""
    columns = []
    for layer in circuit.layers:
        if all(len(g.wires) == 1 for g in layer):
            columns.append({g.wires[0]: label(g) for g in layer})
            continue
        for g in layer:
            low, high = min(g.wires), max(g.wires)
            column = {w: "┼" for w in range(low + 1, high)}
            if g.kind == "CNOT":
                column.update({g.wires[0]: "●", g.wires[1]: "⊕"})
            elif g.kind == "CZ":
                column.update(dict.fromkeys(g.wires, "●"))
            else:
                column.update(dict.fromkeys(g.wires, label(g)))
            columns.append(column)
    return columns


def draw(circuit: Circuit) -> str:
    """Wires as lines, gates as labels; x are the encoded inputs, θ the trainable weights."""
    lines = [f"{w}: ─" for w in range(circuit.n_qubits)]
    for column in _columns(circuit):
        width = max(len(s) for s in column.values())
        for w in range(circuit.n_qubits):
            lines[w] += column.get(w, "").center(width, "─") + "──"
    end = {"z": "┤ <Z>", "zz": "┤ <ZZ>", "probs": "┤ p"}[circuit.readout]
    return "\n".join(line + end for line in lines)


def gate_counts(circuit: Circuit) -> str:
    """For example `8 RY (encoding), 8 Rot (trainable), 8 CNOT`."""
    counts = Counter((g.kind, role(g)) for g in circuit.gates)
    return ", ".join(
        f"{count} {kind}" + (f" ({r})" if r != "fixed" else "")
        for (kind, r), count in counts.items()
    )


def describe(circuit: Circuit, execution: Execution | None = None) -> str:
    """The drawing with the circuit's parameter count, gate count, depth and execution settings."""
    n_layers, n_qubits, k = circuit.weight_shape
    ex = execution or Execution()
    noise = ex.noise
    noise_text = "none" if noise.is_zero else (
        f"depolarizing {noise.depolarizing}, amplitude damping {noise.amplitude_damping}, "
        f"readout error {noise.readout_error}"
    )  # fmt: skip
    uploads = circuit.n_uploads
    encoded = f"each uploaded in all {uploads} layers" if uploads > 1 else "encoded once"
    outputs = readout_labels(circuit)
    shown = ", ".join(outputs if len(outputs) <= 6 else [*outputs[:3], "...", outputs[-1]])
    return "\n".join(
        [
            f"{circuit.n_qubits} qubits, {circuit.n_layers} layers, ansatz {circuit.ansatz} "
            f"({circuit.describe_options()})",
            "",
            draw(circuit),
            "",
            f"trainable parameters: {circuit.n_params} "
            f"({n_layers} layers x {n_qubits} qubits x {k})",
            f"encoded inputs: {circuit.n_qubits} angles x, {encoded}",
            f"gates: {gate_counts(circuit)}",
            f"depth: {depth(circuit)}",
            f"readout: {circuit.readout}, {circuit.n_outputs} outputs ({shown})",
            f"simulator: {'compiled fast path' if plan(circuit) else 'general path'}",
            f"backend: {ex.backend}, gradient: {ex.grad}, "
            f"shots: {ex.shots or 'exact'}, noise: {noise_text}",
        ]
    )


def list_ansatzes(n_qubits: int = 4, n_layers: int = 2) -> str:
    """One line per ansatz: name, options, weights and simulator path at this size."""
    rows = [f"ansatzes at {n_qubits} qubits, {n_layers} layers:"]
    for name, ansatz in ANSATZES.items():
        c = Circuit(n_qubits, n_layers, ansatz=name)
        path = "fast" if plan(c) else "general"
        rows.append(
            f"  {name:<20} weights {'x'.join(map(str, c.weight_shape)):<7} depth {depth(c):<3} "
            f"{path:<8} options: {', '.join(ansatz.options)}"
        )
        rows.append(f"  {'':<20} {ansatz.reference}")
    rows.append("readouts: z (<Z_i>, n), zz (<Z_i Z_j>, n(n-1)/2), probs (2^n)")
    rows.append("set with --set model.quantum.ansatz=NAME (and .gate=cz, .readout=zz, ...)")
    return "\n".join(rows)
