"""The LQER model: ResNet18 features, a quantum circuit on a learned projection, and a
classifier on the fused vector [f, q]."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from lqer.models.backbone import FEATURE_DIM, resnet18_backbone
from lqer.models.base import Model
from lqer.quantum.ansatz import Circuit
from lqer.quantum.execution import Execution
from lqer.quantum.layer import QuantumLayer


def projection_norm(name: str, n: int) -> nn.Module:
    """What z passes through before tanh. Batch norm keeps z near unit scale; without it the
    backbone's features grow while training from scratch, tanh saturates, every angle is
    about +-pi and its gradient about 0 (results/dressed/README.md)."""
    return nn.BatchNorm1d(n) if name == "batch" else nn.Identity()


class QuantumHead(nn.Module):
    """f (B, 512) -> q (B, m): z = norm(W f + b), angles = pi * tanh(z), q = the circuit's
    readout (by default <Z> of each qubit). The paper's head has no norm."""

    def __init__(self, in_features: int, quantum: QuantumLayer, norm: str = "none"):
        super().__init__()
        self.projection = nn.Linear(in_features, quantum.circuit.n_qubits)
        self.norm = projection_norm(norm, quantum.circuit.n_qubits)
        self.quantum = quantum

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        angles = math.pi * torch.tanh(self.norm(self.projection(features)))
        return self.quantum(angles)


def ablate(q: torch.Tensor, how: str) -> torch.Tensor:
    if how == "zeros":
        return torch.zeros_like(q)
    if how == "shuffle":  # a random cyclic permutation: no sample keeps its own q
        order = torch.randperm(len(q), device=q.device)
        source = torch.empty_like(order)
        source[order] = order.roll(1)
        return q[source]
    return q


class Classifier(Model):
    """Backbone features f, an optional head q = head(f), and logits = linear([f, q]), or
    linear(q) alone without `fuse`.

    With LQER's quantum head this is LQER; with `head=None` it is the plain backbone
    classifier, the paper's ResNet18 baseline. Without `fuse` every feature passes through
    the head, as in PennyLane's dressed quantum circuit, so the classifier cannot ignore q.
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module | None,
        head_dim: int = 0,
        feature_dim: int = FEATURE_DIM,
        num_classes: int = 2,
        dropout: float = 0.0,
        fuse: bool = True,
    ):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.fuse = fuse
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(feature_dim * fuse + head_dim, num_classes)
        # Test-time ablation of q: "zeros", or "shuffle" (each sample gets another sample's q).
        self.q_ablation: Literal["none", "zeros", "shuffle"] = "none"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.backbone(images))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from backbone features (B, F): what follows the backbone, so that a dense
        scan (`lqer.eval.dense`) can run the backbone over a whole frame instead."""
        if self.head is not None:
            q = ablate(self.head(features).to(features.dtype), self.q_ablation)
            features = torch.cat([features, q], dim=1) if self.fuse else q
        return self.classifier(self.dropout(features))


def on_resnet18(weights: str, head: nn.Module | None, head_dim: int, dropout: float, fuse=True):
    """ResNet18 features, `head` and the classifier: the frame of every ResNet18 model."""
    return Classifier(resnet18_backbone(weights), head, head_dim, dropout=dropout, fuse=fuse)


def norm_for(projection_norm: str, fuse: bool) -> str:
    """`model.projection_norm`, where "auto" is the paper's none when q is fused with f and
    batch for a dressed head, which does not train without it (results/dressed/)."""
    if projection_norm == "auto":
        return "none" if fuse else "batch"
    return projection_norm


def lqer(
    *,
    weights: str = "none",
    dropout: float = 0.0,
    projection_norm: str = "auto",
    circuit: Circuit | None = None,
    execution: Execution | None = None,
    fuse: bool = True,
    **_: object,
) -> Classifier:
    """LQER: ResNet18 (`weights`: none, imagenet or a state dict's path), the circuit's readout
    q of a projection of f, and a linear classifier on [f, q] (on q alone without `fuse`)."""
    quantum = QuantumLayer(circuit or Circuit(), execution)
    head = QuantumHead(FEATURE_DIM, quantum, norm_for(projection_norm, fuse))
    return on_resnet18(weights, head, quantum.out_features, dropout, fuse)


def lqer_dressed(**arguments) -> Classifier:
    return lqer(**arguments, fuse=False)


def resnet18_classifier(*, weights: str = "none", dropout: float = 0.0, **_: object) -> Classifier:
    return on_resnet18(weights, None, 0, dropout)
