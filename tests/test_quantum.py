"""The quantum layer: the simulator against PennyLane, gradients, shots, noise, backends, CLI."""

import csv

import pytest
import torch
import typer
from helpers import random_inputs, value_and_grads
from typer.testing import CliRunner

from lqer.cli.quantum import register
from lqer.config import ModelConfig, load_config
from lqer.eval.evaluate import predict_proba
from lqer.eval.metrics import binary_metrics
from lqer.models.configured import from_config
from lqer.quantum import Circuit, Execution, Noise, QuantumLayer, executing
from lqer.quantum import noise as noisy
from lqer.quantum import simulator as sim
from lqer.quantum.draw import depth
from lqer.quantum.pennylane_circuit import make_qnode, pennylane_expectations, stack_outputs

try:
    import pennylane as qml
except ImportError:  # PennyLane is an optional extra: the native tests still run
    qml = None
needs_pennylane = pytest.mark.skipif(qml is None, reason="PennyLane is not installed")

CIRCUITS = [
    Circuit(),
    Circuit(1, 2, "rx", "rot", "ring"),
    Circuit(2, 3, "rx", "ry", "ring"),
    Circuit(3, 1, "ry", "ry", "chain"),
    Circuit(3, 2, "rx", "rot", "none"),
    Circuit(5, 2, "ry", "rot", "ring"),
]
NOISES = [
    Noise(0.1),
    Noise(amplitude_damping=0.3),
    Noise(readout_error=0.05),
    Noise(0.05, 0.1, 0.02),
]


@needs_pennylane
@pytest.mark.parametrize("circuit", CIRCUITS, ids=str)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_simulator_matches_pennylane_outputs_and_gradients(circuit, dtype, tol):
    angles, weights = random_inputs(circuit, dtype=dtype, seed=circuit.n_qubits)
    ours = value_and_grads(lambda a, w: sim.expectations(circuit, a, w), angles, weights)
    qnode = make_qnode(circuit)
    ref_angles, ref_weights = random_inputs(circuit, dtype=torch.float64, seed=circuit.n_qubits)
    reference = value_and_grads(
        lambda a, w: stack_outputs(qnode(a, w), torch.float64), ref_angles, ref_weights
    )
    for mine, theirs in zip(ours, reference, strict=True):
        assert mine.dtype == dtype
        torch.testing.assert_close(mine.double(), theirs, atol=tol, rtol=0)


@needs_pennylane
@pytest.mark.parametrize("circuit", CIRCUITS[:3], ids=str)
def test_final_state_matches_pennylane_including_phase(circuit):
    angles, weights = random_inputs(circuit)
    encode = {"ry": qml.RY, "rx": qml.RX}[circuit.encoding]

    @qml.qnode(qml.device("default.qubit", wires=circuit.n_qubits))
    def state(a, w):
        for layer in range(circuit.n_layers):
            for wire in range(circuit.n_qubits):
                encode(a[..., layer, wire], wires=wire)
            for wire in range(circuit.n_qubits):
                if circuit.rotation == "rot":
                    qml.Rot(*w[layer, wire], wires=wire)
                else:
                    qml.RY(w[layer, wire, 0], wires=wire)
            for pair in circuit.cnots:
                qml.CNOT(wires=pair)
        return qml.state()

    expected = torch.as_tensor(state(angles.detach(), weights.detach()))
    torch.testing.assert_close(sim.final_state(circuit, angles, weights).detach(), expected)


@pytest.mark.parametrize(
    "circuit, noise",
    [
        (CIRCUITS[0], Noise()),
        (CIRCUITS[2], Noise()),
        (CIRCUITS[2], Noise(0.1, 0.2, 0.05)),
        (CIRCUITS[4], Noise(0.1, 0.2, 0.05)),
    ],
    ids=str,
)
def test_parameter_shift_matches_backprop_for_weights_and_inputs(circuit, noise):
    layer = QuantumLayer(circuit, Execution(noise=noise)).double()
    x = torch.randn(5, circuit.n_qubits, dtype=torch.float64, generator=torch.Generator())
    x.requires_grad_()

    def run():
        (layer(x) ** 2).sum().backward()
        grads = x.grad.clone(), layer.weights.grad.clone()
        x.grad = layer.weights.grad = None
        return grads

    backprop = run()
    layer.execution = Execution(grad="parameter-shift", noise=noise)
    shifted = run()
    for a, b in zip(backprop, shifted, strict=True):
        assert a.abs().max() > 1e-3  # the comparison is not between zeros
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_shot_estimates_lie_within_their_standard_error():
    circuit, shots, repeats = Circuit(), 400, 100
    layer = QuantumLayer(circuit).double()
    x = torch.randn(8, 4, dtype=torch.float64)
    exact = layer(x).detach()
    with executing(layer, shots=shots, seed=1):
        draws = torch.stack([layer(x).detach() for _ in range(repeats)])
    sigma = ((1 - exact**2) / shots).sqrt()  # one estimate of <Z> from `shots` +-1 outcomes
    assert (draws - exact).abs().max() <= 5 * sigma.max() + 1e-12
    mean_error = (draws.mean(0) - exact).abs()
    assert (mean_error <= 4 * sigma / repeats**0.5 + 1e-12).all()
    spread = draws.std(0)  # and the spread is that of real sampling, not zero
    torch.testing.assert_close(spread, sigma, atol=0.2 * sigma.max().item(), rtol=0.25)
    # each value is (n0 - n1) / shots for whole counts n0 + n1 = shots of the wire's outcomes
    n0 = (draws + 1) * shots / 2
    assert (n0 - n0.round()).abs().max() < 1e-6
    with executing(layer, shots=shots, seed=1):
        assert torch.equal(layer(x).detach(), draws[0])


def test_shots_keep_the_exact_gradient_under_backprop():
    layer = QuantumLayer(Circuit()).double()
    x = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    exact = torch.autograd.grad(layer(x).sum(), [x, layer.weights])
    with executing(layer, shots=50):
        sampled = torch.autograd.grad(layer(x).sum(), [x, layer.weights])
    for a, b in zip(exact, sampled, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("circuit", CIRCUITS[:5], ids=str)
def test_noise_limits(circuit):
    angles, weights = random_inputs(circuit)
    exact = sim.expectations(circuit, angles, weights)
    # zero noise: the density matrix is |psi><psi|, and the layer takes the state-vector path
    rho = noisy.density_matrix(circuit, angles, weights, Noise())
    psi = sim.final_state(circuit, angles, weights)
    torch.testing.assert_close(rho, psi[:, :, None] * psi[:, None, :].conj())
    layer = QuantumLayer(circuit, Execution(noise=Noise())).double()
    assert torch.equal(layer.measure(angles, weights), exact)

    def expect(**strengths):
        return noisy.expectations(circuit, angles, weights, Noise(**strengths))

    assert expect(depolarizing=1.0).abs().max() < 1e-12  # fully depolarised: I / 2^n
    torch.testing.assert_close(expect(amplitude_damping=1.0), torch.ones_like(exact))  # |0..0>
    assert expect(readout_error=0.5).abs().max() < 1e-12  # a coin flip
    torch.testing.assert_close(expect(readout_error=1.0), -exact)
    torch.testing.assert_close(expect(readout_error=0.1), 0.8 * exact)
    weaker = (expect(depolarizing=0.1).abs() <= exact.abs() + 1e-12).all()
    assert weaker  # depolarising only shrinks the expectations


@needs_pennylane
@pytest.mark.parametrize("circuit", CIRCUITS[:5], ids=str)
@pytest.mark.parametrize("noise", NOISES, ids=str)
def test_noise_matches_pennylane_default_mixed(circuit, noise):
    angles, weights = random_inputs(circuit, batch=3)
    ours = noisy.expectations(circuit, angles, weights, noise)
    theirs = pennylane_expectations(circuit, angles, weights, "default.mixed", noise)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)


@needs_pennylane
@pytest.mark.parametrize(
    "backend, noise, grad",
    [
        ("pennylane", Noise(), "backprop"),
        ("pennylane:default.qubit", Noise(), "parameter-shift"),
        ("pennylane:default.mixed", Noise(0.1, 0.05, 0.02), "backprop"),
    ],
)
def test_pennylane_backend_matches_native(backend, noise, grad):
    native = QuantumLayer(Circuit(), Execution(noise=noise)).double()
    other = QuantumLayer(Circuit(), Execution(backend, grad, noise=noise)).double()
    other.load_state_dict(native.state_dict())
    x = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    results = []
    for layer in (native, other):
        out = layer(x)
        grads = torch.autograd.grad((out**2).sum(), [x, layer.weights])
        results.append((out, *grads))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@needs_pennylane
def test_pennylane_backend_with_shots_is_seeded_and_close():
    layer = QuantumLayer(Circuit(), Execution("pennylane", shots=2000, seed=3)).double()
    x = torch.randn(3, 4, dtype=torch.float64)
    first = layer(x)
    with executing(layer, backend="native", shots=None):
        exact = layer(x)
    layer.execution = layer.execution  # restarts the device from its seed
    assert torch.equal(layer(x), first)
    assert (first - exact).abs().max() < 5 * (1 / 2000) ** 0.5


def test_bad_settings_are_one_line_errors():
    from lqer.errors import LqerError

    with pytest.raises(LqerError, match="between 0 and 1"):
        Noise(depolarizing=1.5)
    with pytest.raises(LqerError, match="pennylane"):
        Execution(backend="qiskit")
    with pytest.raises(LqerError, match="shots"):
        Execution(shots=0)
    with pytest.raises(LqerError, match="n_qubits must be between 1 and 8"):
        Circuit(n_qubits=12)
    with pytest.raises(LqerError, match="entangler must be one of ring, chain, none"):
        Circuit(entangler="full")


def test_builder_passes_the_quantum_configuration():
    cfg = load_config(None, [
        "model.quantum.grad=parameter-shift", "model.quantum.shots=100",
        "model.quantum.depolarizing=0.01", "model.quantum.readout_error=0.02",
    ])  # fmt: skip
    model = from_config(cfg.model)
    ex = model.head.quantum.execution
    assert (ex.grad, ex.shots, ex.noise) == ("parameter-shift", 100, Noise(0.01, 0, 0.02))
    with executing(model, noise=Noise(), shots=None):
        assert model.head.quantum.execution.shots is None
    assert model.head.quantum.execution == ex  # restored


def cli():
    app = typer.Typer()
    register(app)
    return app


def test_cli_circuit_prints_drawing_size_and_depth():
    result = CliRunner().invoke(cli(), ["circuit", "--set", "model.quantum.n_layers=3"])
    assert result.exit_code == 0, result.output
    assert "trainable parameters: 36 (3 layers x 4 qubits x 3)" in result.output
    assert f"depth: {depth(Circuit(n_layers=3))}" in result.output
    assert result.output.count("Rot(θ") == 12
    if qml is not None:  # the same depth as PennyLane counts
        qnode = make_qnode(Circuit(n_layers=3))
        specs = qml.specs(qnode)(torch.zeros(3, 4), torch.zeros(3, 4, 3))
        assert depth(Circuit(n_layers=3)) == specs["resources"].depth


def test_cli_noise_sweep_scores_a_checkpoint(tiny_dataset, tmp_path):
    from lqer.data.dataset import load_folder
    from lqer.models.checkpoint import save_checkpoint

    cfg = load_config(None, ["data.image_size=16"])
    torch.manual_seed(0)
    model = from_config(ModelConfig())
    save_checkpoint(tmp_path / "best.pt", model, cfg)
    args = [
        "noise-sweep",
        "--checkpoint",
        tmp_path / "best.pt",
        "--data",
        tiny_dataset / "validation",
    ]
    args += ["--strengths", "0,0.5,1", "--shots", "exact,64", "--channel", "depolarizing"]
    args += ["--channel", "readout_error", "--out", tmp_path / "sweep", "--device", "cpu"]
    result = CliRunner().invoke(cli(), list(map(str, args)))
    assert result.exit_code == 0, result.output
    with open(tmp_path / "sweep" / "noise_sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 * 2
    assert (tmp_path / "sweep" / "noise_sweep.png").stat().st_size > 0
    assert (
        "| depolarizing | 0.0000 | exact |" in (tmp_path / "sweep" / "noise_sweep.md").read_text()
    )
    # the noiseless row is the model's own score, computed the usual way
    data = load_folder(tiny_dataset / "validation", 16)
    probs = predict_proba(model.eval(), data.images, 16, "cpu")
    expected = binary_metrics(data.labels.numpy(), probs)
    assert float(rows[0]["auc"]) == pytest.approx(expected["auc"], abs=1e-9)
    assert float(rows[0]["accuracy"]) == pytest.approx(expected["accuracy"], abs=1e-9)
    # full depolarisation: q = 0 exactly, as in the model's test-time ablation q -> 0
    full = [r for r in rows if r["channel"] == "depolarizing" and r["strength"] == "1.0"]
    model.q_ablation = "zeros"
    ablated = binary_metrics(data.labels.numpy(), predict_proba(model, data.images, 16, "cpu"))
    assert float(full[0]["auc"]) == pytest.approx(ablated["auc"], abs=1e-6)
    assert full[0]["shots"] == "exact"
