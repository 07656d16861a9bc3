"""Typed experiment configuration: a YAML file plus `section.key=value` overrides."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lqer.errors import LqerError
from lqer.io import write_text


@dataclass
class DataConfig:
    root: str = ""
    fold: int | None = None  # A-DSSS layout: <root>/fold<k>/<split>
    train_split: str = "train"
    # Model selection and LR scheduling use `val_split` if given, else a stratified
    # hold-out of the training split, so that `test_split` is never used for tuning.
    val_split: str | None = None
    val_fraction: float = 0.15
    test_split: str | None = "validation"
    split_file: str | None = None  # CSV path,label,split (train/val/test); replaces the folders
    image_size: int = 224
    limit: int | None = None  # stratified subsample of every split, for quick runs
    skip_bad: bool = False
    max_pixels: int = 40_000_000


@dataclass
class QuantumConfig:
    n_qubits: int = 4
    n_layers: int = 2
    encoding: Literal["ry", "rx"] = "ry"
    rotation: Literal["rot", "ry"] = "rot"
    entangler: Literal["ring", "chain", "none"] = "ring"
    backend: str = "native"  # native | pennylane[:device]
    grad: Literal["backprop", "parameter-shift"] = "backprop"
    shots: int | None = None
    depolarizing: float = 0.0
    amplitude_damping: float = 0.0
    readout_error: float = 0.0
    seed: int = 0  # of the shot sampler


@dataclass
class ModelConfig:
    name: Literal[
        "lqer", "resnet18", "cnn", "qcnn", "lqer-classical", "lqer-separable", "lqer-frozen"
    ] = "lqer"
    weights: str = "none"  # imagenet | none | path to a state dict
    dropout: float = 0.0
    quantum: QuantumConfig = field(default_factory=QuantumConfig)


@dataclass
class TrainConfig:
    epochs: int = 15
    batch_size: int = 64
    lr_backbone: float = 1e-4
    lr_head: float = 1e-3  # projection, circuit and classifier
    weight_decay: float = 1e-4
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    imbalance: Literal["weighted", "balanced", "none"] = "weighted"
    augment: Literal["all", "positives", "none"] = "all"
    select: Literal["auc", "loss"] = "auc"  # validation metric that picks best.pt
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # CPU threads per process; None: the cores shared out
    amp: bool = True  # bf16 autocast on CUDA; ignored on the CPU
    channels_last: bool = True  # on CUDA; ignored on the CPU, where it ran slower
    compile: bool = False  # torch.compile the backbone (pays off on GPUs, after a warm-up)
    devices: int = 1  # local processes for DistributedDataParallel; torchrun overrides
    progress: bool = True


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "runs/lqer"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Check `value` against the annotation `tp`, converting strings from the command line."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except LqerError as e:
                errors.append(str(e))
        raise LqerError(errors[0] if errors else f"{name}: invalid value {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise LqerError(f"{name}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise LqerError(f"{name}: expected a mapping, got {value!r}")
        return _build(tp, value, name)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise LqerError(f"{name}: expected true or false, got {value!r}")
    if tp in (int, float, str):
        if tp is str and isinstance(value, (bool, dict, list)):
            raise LqerError(f"{name}: expected text, got {value!r}")
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise LqerError(f"{name}: expected an integer, got {value!r}")
        try:
            return tp(value)
        except (TypeError, ValueError):
            raise LqerError(f"{name}: expected {tp.__name__}, got {value!r}") from None
    return value


def _build(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        key = f"{prefix}.{sorted(unknown)[0]}" if prefix else sorted(unknown)[0]
        raise LqerError(f"unknown configuration key {key!r}")
    kwargs = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in values.items()}
    return cls(**kwargs)


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
    return _build(ExperimentConfig, values)


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply `section.key=value` strings, e.g. `train.epochs=3` or `model.quantum.n_layers=3`."""
    values = cfg.to_dict()
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise LqerError(f"override {item!r} must look like section.key=value")
        *parents, leaf = key.strip().split(".")
        node = values
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise LqerError(f"unknown configuration key {key!r}")
            node = node[part]
        if leaf not in node:
            raise LqerError(f"unknown configuration key {key!r}")
        node[leaf] = yaml.safe_load(raw) if raw.strip() else ""
    return from_dict(values)


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> ExperimentConfig:
    cfg = ExperimentConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise LqerError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise LqerError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(values, dict):
            raise LqerError(f"{path}: expected a mapping at the top level")
        try:
            cfg = from_dict(values)
        except LqerError as e:
            raise LqerError(f"{path}: {e}") from None
    return apply_overrides(cfg, overrides or [])
