"""Checkpoints that carry everything needed to rebuild the model and its preprocessing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lqer.config import ExperimentConfig, from_dict
from lqer.errors import LqerError
from lqer.io import atomic_path
from lqer.models import Model
from lqer.models.configured import from_config
from lqer.models.weights import shipped

FORMAT = "lqer-checkpoint"
VERSION = 1
CHECKPOINTS = ("best.pt", "last.pt")  # what training writes into a run folder


def save_checkpoint(path: str | Path, model: Model, cfg: ExperimentConfig, **extra: Any) -> None:
    state = {
        "format": FORMAT,
        "version": VERSION,
        "config": cfg.to_dict(),
        "model": model.state_dict(),
        **extra,
    }
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except RuntimeError as e:  # torch.save reports a full disk as "basic_ios::clear"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LqerError(f"could not write {path}: {reason} (is the disk full?)") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():  # a run folder, most likely: name the checkpoints it holds
        found = [str(path / name) for name in CHECKPOINTS if (path / name).is_file()]
        inside = f"give {' or '.join(found)}" if found else "it holds no best.pt or last.pt"
        raise LqerError(f"{path} is a folder, not a checkpoint file; {inside}")
    if not path.is_file():
        raise LqerError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise LqerError(f"{path} is not a readable lqer checkpoint ({type(e).__name__})") from None
    if isinstance(state, dict) and state.get("format") == "lqer-detector":
        raise LqerError(f"{path} is a whole-frame detector: use it with lqer scan")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise LqerError(f"{path} is not an lqer checkpoint")
    if state.get("version") != VERSION:
        raise LqerError(
            f"{path} has checkpoint format version {state.get('version')}; "
            f"this lqer reads version {VERSION}"
        )
    missing = [key for key in ("config", "model") if not isinstance(state.get(key), dict)]
    if missing:
        raise LqerError(f"{path} is an incomplete lqer checkpoint (no {' or '.join(missing)})")
    return state


def load_checkpoint(path: str | Path) -> tuple[Model, ExperimentConfig, dict[str, Any]]:
    """The model (eval mode, CPU), its configuration and the rest of the checkpoint. `path`
    may also name shipped weights (`lqer models`), whose metadata is then the rest."""
    entry = shipped(path)
    if entry is not None:
        return entry.loaded()
    state = read_checkpoint(path)
    try:
        cfg = from_dict(state["config"])
    except LqerError as e:
        raise LqerError(f"{path}: its configuration is not valid here ({e})") from None
    cfg.model.weights = "none"  # the state dict below holds the trained weights
    model = from_config(cfg.model)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise LqerError(
            f"{path}: weights do not fit the {cfg.model.name!r} model it describes "
            f"({str(e).splitlines()[0]})"
        ) from None
    return model.eval(), cfg, state


def starting_weights(source: str | Path, name: str) -> dict[str, torch.Tensor]:
    """The state dict of `source` (a checkpoint or shipped weights) for a run that trains the
    `name` model from it (`train.init`); refused unless `source` holds that model."""
    model, cfg, _ = load_checkpoint(source)
    if cfg.model.name != name:
        raise LqerError(
            f"train.init: {source} holds a {cfg.model.name!r} model; this run trains {name!r}"
        )
    return model.float().state_dict()
