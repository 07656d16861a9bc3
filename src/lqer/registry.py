"""The one list of models: the configuration, the CLI help, `lqer compare` and the report read
it, so a new model is one `ModelEntry` here and its builder.

Builders are named, not imported, so that reading this list (as the configuration does) does not
load PyTorch. Every builder takes the keyword arguments of `ModelConfig.arguments`: weights,
dropout, projection_norm, circuit (`lqer.quantum.Circuit`) and execution
(`lqer.quantum.Execution`); a model ignores those it has no use for.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: str  # "module:function"
    summary: str  # what it is, for `--help` and the report
    tests: str | None = None  # what comparing it with lqer tests, for the report's verdict
    circuit: bool = False  # has LQER's quantum head, so q can be ablated at test time
    twin: str | None = None  # the same model with the circuit replaced by a classical layer

    def __call__(self, **arguments: Any) -> Any:  # a `lqer.models.base.Model`
        module, _, function = self.builder.partition(":")
        return getattr(import_module(f"lqer.models.{module}"), function)(**arguments)


MODELS = {
    entry.name: entry
    for entry in (
        ModelEntry("lqer", "lqer:lqer", "ResNet18 features f, circuit readout q, linear on [f, q]",
                   circuit=True, twin="lqer-classical"),
        ModelEntry("resnet18", "lqer:resnet18_classifier", "ResNet18 alone",
                   "dropping the circuit and q altogether (ResNet18 alone)"),
        ModelEntry("cnn", "baselines:cnn",
                   "a small classical CNN (the paper's classical baseline)"),
        ModelEntry("qcnn", "baselines:qcnn", "a pure quantum CNN (quanvolution of 2x2 patches)"),
        ModelEntry("lqer-classical", "baselines:lqer_classical",
                   "LQER with projection + circuit replaced by a classical layer of equal size",
                   "replacing projection and circuit by a classical layer of equal size"),
        ModelEntry("lqer-separable", "baselines:lqer_separable", "LQER without entangling gates",
                   "removing the circuit's entangling gates", circuit=True),
        ModelEntry("lqer-frozen", "baselines:lqer_frozen",
                   "LQER with the circuit frozen at its random initial weights",
                   "freezing the circuit at its random initial weights", circuit=True),
        ModelEntry("lqer-dressed", "lqer:lqer_dressed",
                   "the circuit's readout alone feeds the classifier: 512 -> n -> circuit -> 2",
                   "making the classifier read q alone, so that it cannot bypass the circuit",
                   circuit=True, twin="classical-dressed"),
        ModelEntry("classical-dressed", "baselines:classical_dressed",
                   "lqer-dressed with the circuit replaced by a classical layer of equal size",
                   "reading q alone from a classical layer instead of the circuit"),
    )
}  # fmt: skip


def build_model(name: str, **arguments: Any) -> Any:
    """A freshly initialised model: `build_model("lqer", circuit=Circuit(n_qubits=6))`."""
    return MODELS[name](**arguments)
