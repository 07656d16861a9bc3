"""Adapt a trained model to a new site: a run that starts from its weights (`train.init`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lqer.config import ExperimentConfig, from_dict
from lqer.models.checkpoint import load_checkpoint
from lqer.sections import apply_overrides

# The CPU recipe's rates and length (configs/padsd-cpu.yaml), from the source's weights. On
# A-DSSS (results/finetune) it beat a gentler 5 epochs at 1e-4 / 1e-3 on the runs' own
# hold-outs at every budget from 10 patches to all of them.
SCHEDULE = {"epochs": 10, "lr_backbone": 1e-3, "lr_head": 3e-3}


def finetune_config(
    source: str | Path, data: str | Path, out: str | Path, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """The run that adapts `source` (a checkpoint or shipped weights) to the labelled patches
    under `data` (`train/` and, as test, `validation/`): the source's model and input size,
    `SCHEDULE`, and the threshold chosen again on a hold-out of the new `train/`."""
    _, start, _ = load_checkpoint(source)
    settings = {
        "data": {"root": str(data), "image_size": start.data.image_size},
        "model": {**start.model.to_dict(), "weights": "none"},
        "train": {**SCHEDULE, "init": str(source)},
        "out_dir": str(out),
    }
    return apply_overrides(from_dict(settings), list(overrides))
