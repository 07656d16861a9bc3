"""Adapt a trained model to a new site: a run that starts from its weights (`train.init`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lqer.config import ExperimentConfig, apply_overrides, from_dict
from lqer.models.checkpoint import load_checkpoint

# A short schedule at the rates of the paper's fine-tuning of an ImageNet backbone.
SCHEDULE = {"epochs": 5, "lr_backbone": 1e-4, "lr_head": 1e-3}


def finetune_config(
    source: str | Path, data: str | Path, out: str | Path, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """The run that adapts `source` (a checkpoint or shipped weights) to the labelled patches
    under `data` (`train/` and, as test, `validation/`): the source's model and input size, a
    short schedule, and the threshold chosen again on a hold-out of the new `train/`."""
    _, start, _ = load_checkpoint(source)
    settings = {
        "data": {"root": str(data), "image_size": start.data.image_size},
        "model": {**start.model.to_dict(), "weights": "none"},
        "train": {**SCHEDULE, "init": str(source)},
        "out_dir": str(out),
    }
    return apply_overrides(from_dict(settings), list(overrides))
