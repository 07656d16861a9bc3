"""Circuits as data: every ansatz and readout against PennyLane's own templates, the compiled
fast path against the general path, and noise, shots, parameter shift, the PennyLane backend,
the CLI and training for each of them."""

import itertools

import pytest
import torch
import typer
from helpers import random_inputs, value_and_grads
from typer.testing import CliRunner

from lqer.cli.quantum import register
from lqer.config import load_config
from lqer.quantum import ANSATZES, Circuit, Execution, Noise, QuantumLayer, executing
from lqer.quantum import noise as noisy
from lqer.quantum import simulator as sim
from lqer.quantum.ansatz import Weight
from lqer.quantum.draw import depth, describe
from lqer.quantum.pennylane_circuit import make_qnode, pennylane_expectations, stack_outputs

try:
    import pennylane as qml
except ImportError:
    qml = None
needs_pennylane = pytest.mark.skipif(qml is None, reason="PennyLane is not installed")

CIRCUITS = [
    Circuit(ansatz="strongly-entangling"),
    Circuit(3, 3, "rx", ansatz="strongly-entangling", gate="cz"),
    Circuit(2, 2, ansatz="strongly-entangling", readout="zz"),
    Circuit(ansatz="basic-entangler"),
    Circuit(3, 2, "rx", ansatz="basic-entangler", readout="probs"),
    Circuit(ansatz="iqp"),
    Circuit(3, 2, rotation="ry", entangler="chain", ansatz="iqp", gate="cz", readout="zz"),
    Circuit(gate="cz"),
    Circuit(3, 2, "rx", "ry", "chain", readout="probs"),
    Circuit(readout="zz"),
]


def template_qnode(circuit: Circuit):
    """The circuit written with PennyLane's own templates, independently of our gate list."""
    n, wires = circuit.n_qubits, list(range(circuit.n_qubits))
    rotation = circuit.encoding[-1].upper()
    entangling = {"cnot": qml.CNOT, "cz": qml.CZ}[circuit.gate]
    pattern = {"ring": "ring", "chain": "chain"}.get(circuit.entangler)

    def trainable(w):
        for wire in wires:
            if circuit.rotation == "rot":
                qml.Rot(*w[wire], wires=wire)
            else:
                qml.RY(w[wire, 0], wires=wire)
        pairs = circuit.cnots if pattern else ()
        for pair in pairs:
            entangling(wires=list(pair))

    @qml.qnode(qml.device("default.qubit", wires=n), interface="torch", diff_method="backprop")
    def qnode(x, w):
        for layer in range(circuit.n_layers):
            if circuit.ansatz == "iqp":
                if layer == 0:
                    qml.IQPEmbedding(x[..., 0, :], wires=wires)
                trainable(w[layer])
                continue
            qml.AngleEmbedding(x[..., layer, :], wires=wires, rotation=rotation)
            if circuit.ansatz == "strongly-entangling":
                reach = [layer % (n - 1) + 1] if n > 1 else [0]
                qml.StronglyEntanglingLayers(
                    w[layer : layer + 1], wires=wires, ranges=reach, imprimitive=entangling
                )
            elif circuit.ansatz == "basic-entangler":
                qml.BasicEntanglerLayers(w[layer : layer + 1, :, 0], wires=wires, rotation=qml.RX)
            else:
                trainable(w[layer])
        if circuit.readout == "probs":
            return qml.probs(wires=wires)
        if circuit.readout == "zz":
            return [qml.expval(qml.Z(i) @ qml.Z(j)) for i, j in itertools.combinations(wires, 2)]
        return [qml.expval(qml.Z(i)) for i in wires]

    return qnode


def test_every_ansatz_is_tested_and_listed():
    tested = {c.ansatz for c in CIRCUITS} | {"reuploading"}
    assert tested == set(ANSATZES)
    assert {c.readout for c in CIRCUITS} == {"z", "zz", "probs"}


@needs_pennylane
@pytest.mark.parametrize("circuit", CIRCUITS, ids=str)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_ansatz_matches_pennylane_templates(circuit, dtype, tol):
    if circuit.ansatz == "basic-entangler" and circuit.gate != "cnot":
        pytest.skip("BasicEntanglerLayers only knows CNOT")
    ours = value_and_grads(
        lambda a, w: sim.expectations(circuit, a, w), *random_inputs(circuit, dtype=dtype)
    )
    qnode = template_qnode(circuit)
    theirs = value_and_grads(
        lambda a, w: stack_outputs(qnode(a, w), torch.float64), *random_inputs(circuit)
    )
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.dtype == dtype
        assert reference.abs().max() > 1e-3  # not a comparison of zeros
        torch.testing.assert_close(mine.double(), reference, atol=tol, rtol=0)


@needs_pennylane
@pytest.mark.parametrize("circuit", CIRCUITS, ids=str)
def test_our_qnode_builder_matches_the_templates(circuit):
    if circuit.ansatz == "basic-entangler" and circuit.gate != "cnot":
        pytest.skip("BasicEntanglerLayers only knows CNOT")
    angles, weights = random_inputs(circuit)
    ours = stack_outputs(make_qnode(circuit)(angles, weights), torch.float64)
    theirs = stack_outputs(template_qnode(circuit)(angles, weights), torch.float64)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)


FAST = [c for c in [Circuit(), *CIRCUITS] if sim.plan(c) is not None]


def test_which_circuits_take_the_fast_path():
    assert {c.ansatz for c in FAST} == {"reuploading", "strongly-entangling", "basic-entangler"}
    assert sim.plan(Circuit(ansatz="iqp")) is None


@pytest.mark.parametrize("circuit", FAST, ids=str)
@pytest.mark.parametrize("uploads", ["per-layer", "shared"])
def test_fast_path_matches_the_general_path(circuit, uploads):
    angles, weights = random_inputs(circuit)
    if uploads == "shared":
        angles = angles.detach()[:, :1].requires_grad_()

    def general(a, w):
        return torch.view_as_real(sim.final_state(circuit, a, w)).square().sum(-1)

    fast = value_and_grads(lambda a, w: sim.probabilities(circuit, a, w), angles, weights)
    slow = value_and_grads(general, angles, weights)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


LAYER_CIRCUITS = [CIRCUITS[1], CIRCUITS[4], CIRCUITS[5], CIRCUITS[6]]


@pytest.mark.parametrize("circuit", LAYER_CIRCUITS, ids=str)
def test_parameter_shift_matches_backprop_with_noise(circuit):
    noise = Noise(0.05, 0.1, 0.02)
    layer = QuantumLayer(circuit, Execution(noise=noise)).double()
    x = torch.randn(4, circuit.n_qubits, dtype=torch.float64, requires_grad=True)

    def grads():
        out = layer(x)
        return torch.autograd.grad((out * torch.linspace(-1, 2, out.shape[1])).sum(),
                                   [x, layer.weights])  # fmt: skip

    backprop = grads()
    layer.execution = Execution(grad="parameter-shift", noise=noise)
    for a, b in zip(backprop, grads(), strict=True):
        assert a.abs().max() > 1e-4
        torch.testing.assert_close(a, b, atol=1e-8, rtol=0)


@needs_pennylane
@pytest.mark.parametrize("circuit", LAYER_CIRCUITS, ids=str)
def test_noise_and_the_pennylane_backend_match_for_every_ansatz(circuit):
    noise = Noise(0.1, 0.05, 0.02)
    angles, weights = random_inputs(circuit, batch=3)
    ours = noisy.expectations(circuit, angles, weights, noise)
    theirs = pennylane_expectations(circuit, angles, weights, "default.mixed", noise)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)
    native = QuantumLayer(circuit).double()
    other = QuantumLayer(circuit, Execution("pennylane", "parameter-shift")).double()
    other.load_state_dict(native.state_dict())
    x = torch.randn(3, circuit.n_qubits, dtype=torch.float64, requires_grad=True)
    results = []
    for layer in (native, other):
        out = layer(x)
        results.append((out, *torch.autograd.grad((out**2).sum(), [x, layer.weights])))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("circuit", LAYER_CIRCUITS, ids=str)
def test_shots_estimate_every_readout(circuit):
    layer = QuantumLayer(circuit).double()
    x = torch.randn(6, circuit.n_qubits, dtype=torch.float64)
    exact = layer(x).detach()
    with executing(layer, shots=4000, seed=2):
        sampled = layer(x).detach()
    assert sampled.shape == exact.shape == (6, circuit.n_outputs)
    assert not torch.equal(sampled, exact)
    assert (sampled - exact).abs().max() < 6 * (1 / 4000) ** 0.5  # within ~6 standard errors


def test_readouts_are_consistent():
    angles, weights = random_inputs(Circuit(), batch=5)
    probs = sim.expectations(Circuit(readout="probs"), angles, weights)
    z = sim.expectations(Circuit(), angles, weights)
    zz = sim.expectations(Circuit(readout="zz"), angles, weights)
    torch.testing.assert_close(probs.sum(1), torch.ones(5, dtype=torch.float64))
    assert zz.shape == (5, 6) and probs.shape == (5, 16)
    # for a product state <Z_i Z_j> = <Z_i><Z_j>; with entanglement it differs
    separable = Circuit(entangler="none")
    z_sep = sim.expectations(separable, angles, weights)
    zz_sep = sim.expectations(Circuit(entangler="none", readout="zz"), angles, weights)
    pairs = list(itertools.combinations(range(4), 2))
    torch.testing.assert_close(
        zz_sep, torch.stack([z_sep[:, i] * z_sep[:, j] for i, j in pairs], 1)
    )
    assert (zz - torch.stack([z[:, i] * z[:, j] for i, j in pairs], 1)).abs().max() > 1e-3


def test_bad_ansatz_settings_are_one_line_errors():
    from lqer.errors import LqerError

    with pytest.raises(LqerError, match="ansatz must be one of reuploading, strongly-entangling"):
        Circuit(ansatz="qaoa")
    with pytest.raises(LqerError, match="readout zz needs at least 2 qubits"):
        Circuit(1, readout="zz")
    with pytest.raises(LqerError, match="model.quantum.gate"):
        load_config(None, ["model.quantum.gate=swap"])


@needs_pennylane
@pytest.mark.parametrize("name", sorted(ANSATZES))
def test_depth_and_drawing_follow_the_gate_list(name):
    circuit = Circuit(ansatz=name)
    qnode = make_qnode(circuit)
    specs = qml.specs(qnode)(torch.zeros(circuit.n_uploads, 4), torch.zeros(circuit.weight_shape))
    assert depth(circuit) == specs["resources"].depth
    assert specs["resources"].num_gates == len(circuit.gates)
    text = describe(circuit)
    assert f"trainable parameters: {circuit.n_params}" in text
    trainable = [g for g in circuit.gates if any(isinstance(p, Weight) for p in g.params)]
    assert text.count("θ") == len(trainable)


def cli():
    app = typer.Typer()
    register(app)
    return app


def test_cli_circuit_lists_the_ansatzes():
    result = CliRunner().invoke(cli(), ["circuit", "--list"])
    assert result.exit_code == 0, result.output
    for name in ANSATZES:
        assert name in result.output
    result = CliRunner().invoke(cli(), ["circuit", "--set", "model.quantum.ansatz=iqp",
                                        "--set", "model.quantum.readout=zz"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ZZ(x0·x1)" in result.output and "general path" in result.output
    assert "readout: zz, 6 outputs" in result.output


@pytest.mark.parametrize(
    "settings",
    [["model.quantum.ansatz=strongly-entangling", "model.quantum.gate=cz"],
     ["model.quantum.ansatz=basic-entangler", "model.quantum.readout=probs"],
     ["model.quantum.ansatz=iqp", "model.quantum.readout=zz"]],
    ids=lambda s: s[0].split("=")[1],
)  # fmt: skip
def test_lqer_trains_with_each_ansatz(tiny_dataset, tmp_path, settings):
    from lqer.models.checkpoint import load_checkpoint
    from lqer.train import fit

    cfg = load_config(None, [
        f"data.root={tiny_dataset}", "data.image_size=16", f"out_dir={tmp_path / 'run'}",
        "train.epochs=1", "train.batch_size=16", "train.progress=false", *settings,
    ])  # fmt: skip
    run = fit(cfg)
    model, saved, _ = load_checkpoint(run / "last.pt")
    quantum = model.head.quantum
    assert saved.model.quantum == cfg.model.quantum
    assert quantum.circuit.ansatz == settings[0].split("=")[1]
    assert model.classifier.in_features == 512 + quantum.out_features
    assert torch.isfinite(quantum.weights).all()


def test_pennylane_draws_the_configured_circuit():
    from lqer.config import circuit_of, load_config
    from lqer.quantum.pennylane_circuit import pennylane_drawing

    quantum = load_config(None, ["model.quantum.n_qubits=3"]).model.quantum
    lines = pennylane_drawing(circuit_of(quantum)).splitlines()
    assert [line.split(":")[0].strip() for line in lines if line.strip()] == ["0", "1", "2"]
    assert all(line.rstrip().endswith("<Z>") for line in lines if line.strip())
