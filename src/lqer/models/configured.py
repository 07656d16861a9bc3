"""A model as a configuration describes it: the one bridge from `lqer.config` to the builders,
which take plain keyword arguments (`lqer.models.registry`)."""

from __future__ import annotations

from lqer.config import ModelConfig
from lqer.models.base import Model
from lqer.models.registry import build_model


def from_config(cfg: ModelConfig) -> Model:
    """A freshly initialised model, e.g. `from_config(ModelConfig(name="resnet18"))`."""
    return build_model(cfg.name, **cfg.arguments())
