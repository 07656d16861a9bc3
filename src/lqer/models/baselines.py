"""Builders of the paper's baselines and of the ablations that test whether LQER's circuit
matters. What each model is, and what comparing it with LQER tests, is written once, in
`lqer.registry`. Every model is a `Model`, so one training loop and one recipe train
them all; the test-time ablation of q (zeros, or shuffled across the batch) is
`Classifier.q_ablation`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from lqer.errors import LqerError
from lqer.models.backbone import FEATURE_DIM
from lqer.models.base import Model
from lqer.models.lqer import Classifier, lqer, norm_for, on_resnet18, projection_norm
from lqer.quantum.ansatz import ANSATZES, Circuit
from lqer.quantum.execution import Execution
from lqer.quantum.layer import QuantumLayer


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU-maxpool stages and global average pooling: images -> (B, 128)."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        layers, previous = [], 3
        for width in channels:
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            previous = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = previous

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)


def cnn(*, dropout: float = 0.0, **_: object) -> Classifier:
    backbone = SmallCNN()
    return Classifier(backbone, None, feature_dim=backbone.out_features, dropout=dropout)


class Quanvolution(nn.Module):
    """Grayscale images -> (B, m, H/2, W/2): one circuit run per non-overlapping 2x2 patch, with
    m the circuit's outputs.

    The 4 pixels of a patch are encoded as angles pi * tanh(x), as LQER encodes its projection;
    the circuit's trainable weights are shared by all patches, like a convolution kernel.
    """

    def __init__(self, quantum: QuantumLayer):
        super().__init__()
        if quantum.circuit.n_qubits != 4:
            raise ValueError("quanvolution encodes 2x2 patches: it needs 4 qubits")
        self.quantum = quantum
        self.out_channels = quantum.out_features

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        b, _, h, w = gray.shape
        patches = F.unfold(gray, kernel_size=2, stride=2)  # (B, 4, L)
        angles = math.pi * torch.tanh(patches.transpose(1, 2).reshape(-1, 4))
        q = self.quantum(angles).to(gray.dtype)  # (B * L, m)
        m = self.out_channels
        return q.reshape(b, -1, m).transpose(1, 2).reshape(b, m, h // 2, w // 2)


class QCNN(Model):
    """Downsample to `input_size` (a CPU can afford ~B * 64 circuit runs per batch), quanvolve,
    and classify the flattened feature maps with one linear layer."""

    def __init__(self, quanvolution: Quanvolution, input_size: int = 16, dropout: float = 0.0):
        super().__init__()
        self.input_size = input_size
        self.quanvolution = quanvolution
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(quanvolution.out_channels * (input_size // 2) ** 2, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        gray = images.mean(dim=1, keepdim=True)  # the three channels hold one grayscale image
        gray = F.adaptive_avg_pool2d(gray, self.input_size)
        maps = self.quanvolution(gray)
        return self.classifier(self.dropout(maps.flatten(1)))

    # No backbone: the circuit learns at the head's rate, as in LQER.


def qcnn(
    *,
    dropout: float = 0.0,
    circuit: Circuit | None = None,
    execution: Execution | None = None,
    **_: object,
) -> QCNN:
    """LQER's circuit on 4 qubits, with the same execution (backend, gradient, shots, noise)."""
    quantum = QuantumLayer(dataclasses.replace(circuit or Circuit(), n_qubits=4), execution)
    return QCNN(Quanvolution(quantum), dropout=dropout)


class RingLayers(nn.Module):
    """A classical stand-in for the circuit with the same weight shape (L, n, k), k <= 3.

    Layer l maps h -> tanh(w0 * h + w1 * roll(h) + w2): per unit a scale, a coupling to its ring
    neighbour (the counterpart of the CNOT ring) and a bias, using the first k of these terms.
    Outputs lie in (-1, 1), like Pauli-Z expectations.
    """

    def __init__(self, n_layers: int, n_units: int, k: int):
        super().__init__()
        if not 1 <= k <= 3:
            raise ValueError(f"RingLayers supports 1 to 3 weights per unit, got {k}")
        weights = torch.zeros(n_layers, n_units, k)
        weights[..., 0] = 1.0
        self.weights = nn.Parameter(weights + 0.1 * torch.randn(n_layers, n_units, k))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            terms = (h, h.roll(1, dims=1), torch.ones_like(h))[: w.shape[1]]
            h = torch.tanh(sum(w[:, j] * term for j, term in enumerate(terms)))
        return h


class ClassicalHead(nn.Module):
    """f -> q with the parameter count of QuantumHead: the same projection, then RingLayers."""

    def __init__(self, in_features: int, circuit: Circuit, norm: str = "none"):
        super().__init__()
        n_layers, n, k = circuit.weight_shape
        self.projection = nn.Linear(in_features, n)
        self.norm = projection_norm(norm, n)
        self.layers = RingLayers(n_layers, n, k)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.tanh(self.norm(self.projection(features))))


def lqer_classical(
    *,
    weights: str = "none",
    dropout: float = 0.0,
    projection_norm: str = "auto",
    circuit: Circuit | None = None,
    fuse: bool = True,
    **_: object,
) -> Classifier:
    circuit = circuit or Circuit()
    head = ClassicalHead(FEATURE_DIM, circuit, norm_for(projection_norm, fuse))
    return on_resnet18(weights, head, circuit.n_qubits, dropout, fuse)


def classical_dressed(**arguments) -> Classifier:
    return lqer_classical(**arguments, fuse=False)


def lqer_separable(*, circuit: Circuit | None = None, **arguments) -> Classifier:
    circuit = circuit or Circuit()
    if "entangler" not in ANSATZES[circuit.ansatz].options:
        raise LqerError(
            f"lqer-separable removes the entangler, which ansatz {circuit.ansatz} has no "
            "option for; use the ansatz reuploading or iqp"
        )
    return lqer(circuit=dataclasses.replace(circuit, entangler="none"), **arguments)


def lqer_frozen(**arguments) -> Classifier:
    model = lqer(**arguments)
    model.head.quantum.weights.requires_grad_(False)
    return model
