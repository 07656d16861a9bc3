"""A model as a configuration describes it: the one bridge from `lqer.config` to the builders,
which take plain keyword arguments (`lqer.registry`)."""

from __future__ import annotations

import torch

from lqer.config import ModelConfig
from lqer.models.base import Model
from lqer.registry import build_model


def from_config(cfg: ModelConfig) -> Model:
    """A freshly initialised model, e.g. `from_config(ModelConfig(name="resnet18"))`."""
    model = build_model(cfg.name, **cfg.arguments())
    if cfg.input_norm == "image":  # a hook: the weights' names stay those of the builder
        model.register_forward_pre_hook(standardize_each_image)
    return model


def standardize_each_image(module: torch.nn.Module, args: tuple) -> tuple:
    """(B, C, H, W) -> each image at zero mean and unit variance over its pixels."""
    x, *rest = args
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) / (std + 1e-5), *rest)
