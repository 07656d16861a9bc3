"""What the quantum layer costs: alone against PennyLane's TorchLayer and TorchQuantum, and
inside a training step.

    python benchmarks/quantum_layer.py [--steps 9] [--threads N] [--ansatz NAME ...]

Prints, measured in this run on this machine:
1. forward + backward of every ansatz at 4 qubits, 2 layers, batch 32 on the CPU: lqer's
   QuantumLayer against qml.qnn.TorchLayer on default.qubit and against TorchQuantum, both
   running the same gate list (target for the paper's circuit, `reuploading`: at least 20x
   faster than TorchLayer and 10x faster than TorchQuantum);
2. one training step of LQER against one of the same ResNet18 without the circuit, at batch 64
   and 224 px, on the CPU and, where present, on the GPU (target: a ratio of at most 1.03),
   and the cost of LQER's head (projection + circuit) alone as a share of the ResNet18 step.

TorchQuantum (PyPI `torchquantum` 0.1.8) pins qiskit<1 and TensorFlow; its columns are left
out where it does not import. Installed without its heavy extras it needs, beside this venv:
    pip uninstall -y qiskit
    pip install --no-deps qiskit-terra==0.46.3 qiskit==0.46.3 qiskit-aer==0.14.2 \
        qiskit-ibm-runtime==0.20.0 torchquantum==0.1.8 psutil ply PyJWT ibm-platform-services \
        websocket-client requests-ntlm pyspnego cryptography cffi standard-pkg-resources \
        torchpack multimethod toml loguru pathos ppft multiprocess pox torchdiffeq dill \
        stevedore ibm-cloud-sdk-core opt-einsum rustworkx

Timings interleave the candidates round by round, so that a busy machine slows both alike, and
report the median and the minimum over rounds; the minimum is the least disturbed figure.
Ratios are the median of the per-round ratios, and the ratio of the minima.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from lqer.config import ModelConfig
from lqer.models.configured import from_config
from lqer.quantum import ANSATZES, Circuit, QuantumLayer, fast_path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def race(candidates: dict[str, tuple[Callable[[], None], int]], rounds: int, device) -> dict:
    """Seconds per call of each (function, calls per round), one figure per round."""
    for run, _ in candidates.values():  # warm-up: allocations, caches, lazy initialisation
        run()
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, (run, calls) in candidates.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(calls):
                run()
            sync(device)
            times[name].append((time.perf_counter() - start) / calls)
    return times


def summary(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), min(times)


def paired(a: list[float], b: list[float]) -> tuple[float, float]:
    """a / b: the median of the rounds' ratios (each round runs both under like load), and the
    ratio of the minima."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True)), min(a) / min(b)


def torchlayer(circuit: Circuit) -> nn.Module:
    """The same gate list as a TorchLayer, the way PennyLane's documentation wraps a QNode."""
    import pennylane as qml

    from lqer.quantum.pennylane_circuit import make_qnode

    body = make_qnode(circuit).func  # the quantum function of our QNode, from the gate list

    def circuit_function(inputs, weights):
        return body(inputs.unsqueeze(-2), weights)  # every layer uploads the same inputs

    device = qml.device("default.qubit", wires=circuit.n_qubits)
    qnode = qml.QNode(circuit_function, device, interface="torch")
    return qml.qnn.TorchLayer(qnode, {"weights": circuit.weight_shape})


class TorchQuantumLayer(nn.Module):
    """The same gate list in TorchQuantum, gate by gate, with <Z> of every wire read out."""

    def __init__(self, circuit: Circuit):
        super().__init__()
        self.circuit = circuit
        self.weights = nn.Parameter(torch.rand(circuit.weight_shape) * 2 * torch.pi)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        import torchquantum as tq

        from lqer.quantum.ansatz import Input

        functions = {"RX": "rx", "RY": "ry", "RZ": "rz", "Rot": "rot", "Hadamard": "h",
                     "CNOT": "cnot", "CZ": "cz", "MultiRZ": "multirz"}  # fmt: skip
        batch, n = inputs.shape[0], self.circuit.n_qubits
        qdev = tq.QuantumDevice(n_wires=n, bsz=batch, device=inputs.device)
        for gate in self.circuit.gates:
            params = []
            for p in gate.params:
                if isinstance(p, Input):
                    params.append(torch.prod(inputs[:, list(p.indices)], 1))
                else:
                    params.append(self.weights[p.index].expand(batch))
            apply = getattr(tq.functional, functions[gate.kind])
            wires = list(gate.wires) if len(gate.wires) > 1 else gate.wires[0]
            extra = {"n_wires": 2} if gate.kind == "MultiRZ" else {}
            params = torch.stack(params, 1) if params else None
            if params is not None and params.shape[1] == 1:
                params = params[:, 0]
            apply(qdev, wires=wires, params=params, **extra)
        observables = [tq.PauliZ() for _ in range(n)]
        return tq.measurement.expval(qdev, wires=list(range(n)), observables=observables)


def torchquantum_available() -> bool:
    try:
        import torchquantum  # noqa: F401
    except Exception:  # it fails on many missing or mismatched dependencies
        return False
    return True


def layer_alone(batch: int, rounds: int, calls: int, ansatzes: list[str]) -> None:
    device = torch.device("cpu")
    others = {"torchlayer": torchlayer}
    if torchquantum_available():
        others["torchquantum"] = TorchQuantumLayer
    print(f"quantum layer alone: forward + backward, batch {batch}, 4 qubits, 2 layers, CPU, "
          f"float32; times in ms, speed-ups are median of rounds (ratio of minima)")  # fmt: skip
    header = f"  {'ansatz':<20} {'path':<8} {'lqer':>7}"
    for name in others:
        header += f" {name:>13} {'speed-up':>15}"
    print(header)
    for ansatz in ansatzes:
        circuit = Circuit(ansatz=ansatz)
        angles = (torch.rand(batch, circuit.n_qubits) * 2 - 1).requires_grad_()
        layers = {"lqer": QuantumLayer(circuit)}
        layers.update({name: build(circuit) for name, build in others.items()})
        if "torchquantum" in layers:  # the same weights, so the three compute the same
            layers["torchquantum"].weights.data.copy_(layers["lqer"].weights.data)
            torch.testing.assert_close(layers["torchquantum"](angles), layers["lqer"](angles),
                                       atol=1e-4, rtol=0)  # fmt: skip

        def step(layer, angles=angles):
            return lambda: layer(angles).sum().backward()

        candidates = {name: (step(layer), calls if name == "lqer" else 1)
                      for name, layer in layers.items()}  # fmt: skip
        times = race(candidates, rounds, device)
        path = "fast" if fast_path.plan(circuit) else "general"
        line = f"  {ansatz:<20} {path:<8} {summary(times['lqer'])[0] * 1e3:7.3f}"
        for name in others:
            speedup = paired(times[name], times["lqer"])
            line += (
                f" {summary(times[name])[0] * 1e3:13.3f} {speedup[0]:7.1f}x ({speedup[1]:5.1f}x)"
            )
        print(line)
    if "torchquantum" not in others:
        print("  (TorchQuantum is not installed or does not import: see this file's docstring)")


def layer_on_gpu(batch: int, rounds: int, calls: int) -> None:
    device = torch.device("cuda")
    layer = QuantumLayer(Circuit()).to(device)
    angles = (torch.rand(batch, 4, device=device) * 2 - 1).requires_grad_()
    times = race({"ours": (lambda: layer(angles).sum().backward(), calls)}, rounds, device)
    median, best = summary(times["ours"])
    print(f"quantum layer alone: forward + backward, batch {batch}, {torch.cuda.get_device_name()}")
    print(f"  {'lqer QuantumLayer':<22} median {median * 1e3:8.3f} ms   min {best * 1e3:8.3f} ms")


def training_steps(device: torch.device, batch: int, size: int, rounds: int) -> None:
    torch.manual_seed(0)
    models = {
        "lqer": from_config(ModelConfig(name="lqer", weights="none")),
        "resnet18": from_config(ModelConfig(name="resnet18", weights="none")),
    }
    models["lqer"].backbone.load_state_dict(models["resnet18"].backbone.state_dict())
    images = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    amp = device.type == "cuda"  # as in training: bf16 autocast on a GPU only

    def step(model: nn.Module) -> Callable[[], None]:
        model.to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def run():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, torch.bfloat16, enabled=amp):
                loss = nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()

        return run

    print(f"training step: batch {batch}, {size} px, {device} ({device_name(device)})")
    times = race({name: (step(m), 1) for name, m in models.items()}, rounds, device)
    for name, t in times.items():
        median, best = summary(t)
        print(f"  {name:<22} median {median * 1e3:8.1f} ms   min {best * 1e3:8.1f} ms")
    ratio = paired(times["lqer"], times["resnet18"])
    print(f"  LQER / ResNet18        median {ratio[0]:8.3f}      of mins {ratio[1]:6.3f}")
    # The difference of two long, noisy step times is a poor estimate of a small cost, so also
    # time what LQER adds, the head (projection + circuit), forward and backward on its own.
    head = models["lqer"].head
    features = torch.randn(batch, 512, device=device, requires_grad=True)
    head_step = {"head": (lambda: head(features).sum().backward(), 20)}
    extra = summary(race(head_step, 10, device)["head"])
    share = [e / r for e, r in zip(extra, summary(times["resnet18"]), strict=True)]
    print(
        f"  quantum head alone     median {extra[0] * 1e3:8.3f} ms   min {extra[1] * 1e3:8.3f} ms"
    )
    print(f"  1 + head / ResNet18    median {1 + share[0]:8.4f}      min {1 + share[1]:8.4f}")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-calls", type=int, default=20, help="of lqer's layer per round")
    parser.add_argument("--layer-rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=9, help="training-step rounds; 0 skips")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads [torch default]")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--ansatz", nargs="*", default=list(ANSATZES), choices=list(ANSATZES))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    layer_alone(32, args.layer_rounds, args.layer_calls, args.ansatz)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        layer_on_gpu(32, args.layer_rounds, args.layer_calls)
        devices.append(torch.device("cuda"))
    for device in devices if args.steps else []:
        training_steps(device, args.batch, args.size, args.steps)


if __name__ == "__main__":
    main()
