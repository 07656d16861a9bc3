"""What the quantum layer costs: alone against PennyLane's TorchLayer, and inside a training step.

    python benchmarks/quantum_layer.py [--steps 9] [--threads N]

Prints, measured in this run on this machine:
1. forward + backward of the 4-qubit, 2-layer circuit at batch 32 on the CPU: lqer's
   QuantumLayer against qml.qnn.TorchLayer on default.qubit (target: at least 20x faster);
2. one training step of LQER against one of the same ResNet18 without the circuit, at batch 64
   and 224 px, on the CPU and, where present, on the GPU (target: a ratio of at most 1.03),
   and the cost of LQER's head (projection + circuit) alone as a share of the ResNet18 step.

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
from lqer.models import build_model
from lqer.quantum import Circuit, QuantumLayer


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
    """The same circuit the way PennyLane's documentation builds a TorchLayer."""
    import pennylane as qml

    wires = range(circuit.n_qubits)

    @qml.qnode(qml.device("default.qubit", wires=circuit.n_qubits), interface="torch")
    def qnode(inputs, weights):
        for layer in range(circuit.n_layers):
            qml.AngleEmbedding(inputs, wires=wires, rotation="Y")
            for wire in wires:
                qml.Rot(*weights[layer, wire], wires=wire)
            for control, target in circuit.cnots:
                qml.CNOT(wires=[control, target])
        return [qml.expval(qml.PauliZ(w)) for w in wires]

    return qml.qnn.TorchLayer(qnode, {"weights": circuit.weight_shape})


def layer_alone(batch: int, rounds: int, calls: int) -> None:
    circuit = Circuit()
    device = torch.device("cpu")
    angles = torch.rand(batch, circuit.n_qubits) * 2 - 1
    angles.requires_grad_()
    ours, theirs = QuantumLayer(circuit), torchlayer(circuit)

    def step(layer):
        return lambda: layer(angles).sum().backward()

    print(f"quantum layer alone: forward + backward, batch {batch}, CPU, float32")
    candidates = {"ours": (step(ours), calls), "torchlayer": (step(theirs), 1)}
    times = race(candidates, rounds, device)
    for name, label in (("ours", "lqer QuantumLayer"), ("torchlayer", "PennyLane TorchLayer")):
        median, best = summary(times[name])
        print(f"  {label:<22} median {median * 1e3:8.3f} ms   min {best * 1e3:8.3f} ms")
    speedup = paired(times["torchlayer"], times["ours"])
    print(f"  speed-up               median {speedup[0]:8.1f} x    of mins {speedup[1]:6.1f} x")


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
        "lqer": build_model(ModelConfig(name="lqer", weights="none")),
        "resnet18": build_model(ModelConfig(name="resnet18", weights="none")),
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
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    layer_alone(32, args.layer_rounds, args.layer_calls)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        layer_on_gpu(32, args.layer_rounds, args.layer_calls)
        devices.append(torch.device("cuda"))
    for device in devices if args.steps else []:
        training_steps(device, args.batch, args.size, args.steps)


if __name__ == "__main__":
    main()
