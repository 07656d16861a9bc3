"""Typed experiment configuration: the data, the model and its circuit, and the training, read
from a YAML file plus `section.key=value` overrides and checked as they load (the machinery
is `lqer.sections`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from lqer.errors import LqerError
from lqer.guarded_yaml import first_line, safe_yaml, shown
from lqer.quantum.ansatz import (
    ANSATZES,
    ENCODINGS,
    ENTANGLERS,
    GATES,
    MAX_QUBITS,
    READOUTS,
    ROTATIONS,
    Circuit,
)
from lqer.quantum.execution import GRADS, Execution, Noise, device_name
from lqer.registry import MODELS
from lqer.sections import (
    Bool,
    Count,
    Float,
    Int,
    NoneWord,
    OptionalCount,
    Probability,
    S,
    Section,
    Seed,
    Text,
    apply_overrides,
)

# Settings that change how a run goes, not what it computes: a run that `lqer compare` reuses,
# or a run resumed, may differ from the asked configuration in these (and in out_dir).
RESULT_NEUTRAL = (
    "train.progress", "train.threads", "train.devices", "train.compile", "train.channels_last",
    "train.tensorboard",
)  # fmt: skip
# A `--resume` may also train for longer and move to another device. Everything else must
# match the run being resumed.
RESUMABLE = ("train.epochs", "train.device", *RESULT_NEUTRAL)

MAX_FOLDS = 100  # `data split --folds` and data.fold: more parts than any cross-validation uses


def _backend(value: str) -> str:
    """As `Execution` reads it; the device itself is checked on use."""
    try:
        value == "native" or device_name(value)
    except LqerError:
        raise PydanticCustomError("backend", "expected native or pennylane[:DEVICE]") from None
    return value


class DataConfig(Section):
    prefix: ClassVar[str] = "data"

    root: Text = ""  # the folder of the splits, relative to where lqer runs
    fold: OptionalCount(MAX_FOLDS - 1, f"fold<k> folders number 0 to {MAX_FOLDS - 1}", 0) = (
        None  # A-DSSS: <root>/fold<k>
    )
    train_split: Text = "train"  # a folder of root with positive/ and negative/
    # Model selection and LR scheduling use `val_split` if given, else a stratified
    # hold-out of the training split, so that `test_split` is never used for tuning.
    val_split: Annotated[Text | None, NoneWord] = None
    val_fraction: Annotated[Float, Field(gt=0, lt=1, description="a part of the training set")] = (
        0.15
    )
    test_split: Annotated[Text | None, NoneWord] = "validation"  # scored once, at the end
    # CSV path,label,split (train/val/test); replaces the folders
    split_file: Annotated[Text | None, NoneWord] = None
    image_size: Count(
        1024, "16 to 1024: ResNet18 halves it five times; more needs gigabytes per batch", 16
    ) = 224
    # A stratified subsample of every split, for quick runs.
    limit: OptionalCount(10**7, "one image of each class, at most 10 million", 2) = None
    # A stratified subsample of the training split alone, counted in original images (their
    # offline-augmented copies come along): a learning curve's budget of labelled patches.
    # The validation hold-out, where no split gives it, comes out of it.
    train_limit: OptionalCount(10**7, "one image of each class, at most 10 million", 2) = None
    skip_bad: Bool = False  # list unreadable images and go on, instead of stopping
    max_pixels: Count(10**9, "a frame of a billion pixels takes gigabytes to decode") = 40_000_000

    @model_validator(mode="after")
    def _hold_out_needs_two_per_class(self) -> DataConfig:
        for name in ("limit", "train_limit"):
            value = getattr(self, name)
            if self.val_split is None and value is not None and value < 4:
                why = "the validation set held out of the training split takes one of each class"
                raise PydanticCustomError(
                    "hold_out",
                    "must be at least 4 when data.val_split is none",
                    {"field": name, "input": value, "why": why},
                )
        return self


class QuantumConfig(Section):
    prefix: ClassVar[str] = "model.quantum"

    n_qubits: Annotated[
        Int, Field(ge=1, le=MAX_QUBITS, description="1 to 8: the simulator's tables grow as 4^n")
    ] = 4
    n_layers: Count(64, "1 to 64 layers: deeper circuits take minutes per batch") = 2
    # The circuit's choices come from its registry: `lqer circuit --list` shows them.
    ansatz: Literal[tuple(ANSATZES)] = "reuploading"
    encoding: Literal[tuple(ENCODINGS)] = "ry"
    rotation: Literal[tuple(ROTATIONS)] = "rot"
    entangler: Literal[tuple(ENTANGLERS)] = "ring"
    gate: Literal[tuple(GATES)] = "cnot"  # the entangling gate
    readout: Literal[tuple(READOUTS)] = "z"
    backend: Annotated[Text, AfterValidator(_backend)] = "native"  # native | pennylane[:device]
    grad: Literal[GRADS] = "backprop"
    shots: OptionalCount(10**7, "at most 10 million; none gives exact expectations") = None
    # gate noise on every wire after each gate layer (lqer.quantum.noise)
    depolarizing: Probability = 0.0
    amplitude_damping: Probability = 0.0  # the same, amplitude damping
    readout_error: Probability = 0.0  # the chance that a measured bit flips
    seed: Seed = 0  # of the shot sampler

    @model_validator(mode="after")
    def _is_a_circuit(self) -> QuantumConfig:
        """What the fields alone cannot say (readout zz needs 2 qubits) is checked once, by
        the circuit and its execution themselves."""
        try:
            circuit_of(self), execution_of(self)
        except LqerError as e:
            raise PydanticCustomError("circuit", str(e)) from None
        return self


def circuit_of(quantum: QuantumConfig) -> Circuit:
    return Circuit(**{name: getattr(quantum, name) for name in Circuit.__dataclass_fields__})


def execution_of(quantum: QuantumConfig) -> Execution:
    noise = Noise(quantum.depolarizing, quantum.amplitude_damping, quantum.readout_error)
    return Execution(quantum.backend, quantum.grad, quantum.shots, noise, quantum.seed)


class ModelConfig(Section):
    prefix: ClassVar[str] = "model"

    name: Literal[tuple(MODELS)] = "lqer"  # one of lqer.models.MODELS
    weights: Text = "none"  # imagenet | none | path to a state dict
    dropout: Annotated[
        Float, Field(ge=0, lt=1, description="a probability; 1 would drop every feature")
    ] = 0.0
    # what the projection z = W f + b passes through before tanh: none, batch (BatchNorm1d),
    # or auto: none where q is fused with f (the paper), batch for the dressed models
    projection_norm: Literal["auto", "none", "batch"] = "auto"
    # fixed: ImageNet's statistics for every image (the paper); image: each image to zero mean
    # and unit variance at the model's input, so that another system's brightness and
    # contrast do not reach the network (issue 24's transfer recipe)
    input_norm: Literal["fixed", "image"] = "fixed"
    quantum: QuantumConfig = Field(default_factory=QuantumConfig)

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of the builders in `lqer.registry.MODELS`."""
        return {
            "weights": self.weights,
            "dropout": self.dropout,
            "projection_norm": self.projection_norm,
            "circuit": circuit_of(self.quantum),
            "execution": execution_of(self.quantum),
        }


class TrainConfig(Section):
    prefix: ClassVar[str] = "train"

    epochs: Count(10_000, "1 to 10,000 epochs") = 15
    batch_size: Count(4096, "2 to 4096: batch norm cannot train on one image", 2) = 64
    lr_backbone: Annotated[Float, Field(ge=0, description="0 freezes the backbone")] = 1e-4
    lr_head: Annotated[Float, Field(gt=0, description="the head must learn")] = 1e-3
    weight_decay: Annotated[Float, Field(ge=0)] = 1e-4  # AdamW's
    plateau_factor: Annotated[
        Float, Field(gt=0, lt=1, description="a plateau must lower the rate, not stop it")
    ] = 0.5
    plateau_patience: Count(1000, "epochs without progress, 0 to 1000", 0) = 2
    # class weights in the loss, or batches drawn balanced
    imbalance: Literal["weighted", "balanced", "none"] = "weighted"
    # crop, flip and jitter on every patch, or on positives only (the paper)
    augment: Literal["all", "positives", "none"] = "all"
    # mild: the paper's jitter; sites: also gamma, blur and noise, as other systems differ;
    # sites-clahe: sites and, on 30% of patches, CLAHE
    intensity: Literal["mild", "sites", "sites-clahe"] = "mild"
    select: Literal["auc", "loss"] = "auc"  # validation metric that picks best.pt
    # Decay of an exponential moving average of the weights, updated every step; the average
    # is what the hold-out scores and best.pt keeps. 0: none.
    ema: Annotated[Float, Field(ge=0, lt=1, description="0 (none) or a decay below 1")] = 0.0
    seed: Seed = 0  # of the hold-out, the initial weights, the batches and the augmentation
    device: Text = "auto"  # auto (CUDA where there is one), cpu, cuda, cuda:1 ...
    # CPU threads per process; None: the cores shared out
    threads: OptionalCount(1024, "1 to 1024 threads") = None
    # bf16 autocast and channels_last where they pay off: CUDA, and CPUs with AMX from 64 px
    # (lqer.device.training_precision); float32 elsewhere.
    amp: Bool = True
    channels_last: Bool = True  # the memory layout bf16 kernels want
    compile: Bool = False  # torch.compile the backbone (pays off on GPUs, after a warm-up)
    # local processes for DistributedDataParallel; torchrun overrides
    devices: Count(64, "1 to 64 local processes") = 1
    progress: Bool = True  # a progress bar per epoch
    tensorboard: Bool = False  # loss, metrics and learning rates per epoch in <run>/tensorboard
    # A checkpoint or shipped weights of the same model to start from (`lqer finetune`)
    init: Annotated[Text | None, NoneWord] = None


class ExperimentConfig(Section):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    out_dir: Text = "runs/lqer"  # the run folder: checkpoints, history, predictions


# ----------------------------------------------------------------------------- loading


def from_dict(values: dict[str, Any]) -> ExperimentConfig:
    if not isinstance(values, dict):
        raise LqerError(f"expected a mapping at the top level, got {shown(values)}")
    return ExperimentConfig.validated(values)


def _read_yaml(path: Path) -> Any:
    """The parsed file, or an LqerError that says in one line why it cannot be."""
    if not path.exists():
        raise LqerError(f"config file not found: {path}")
    if path.is_dir():
        raise LqerError(f"{path}: is a folder, not a YAML file")
    try:
        data = path.read_bytes()
    except OSError as e:  # permissions, above all
        raise LqerError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        if b"\0" in data:
            raise UnicodeError("it holds NUL bytes")
        text = data.decode("utf-8-sig")
    except UnicodeError as e:
        reason = f"bad UTF-8 at byte {e.start}" if isinstance(e, UnicodeDecodeError) else e
        raise LqerError(f"{path}: not a text YAML file ({reason})") from None
    try:
        return safe_yaml(text)
    except yaml.reader.ReaderError as e:  # control characters: a binary file, most likely
        raise LqerError(f"{path}: not a text YAML file ({e.reason})") from None
    except yaml.YAMLError as e:
        raise LqerError(f"{path}: not valid YAML ({first_line(e)})") from None
    except RecursionError:
        raise LqerError(f"{path}: not valid YAML (nested too deeply)") from None


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    kind: type[S] = ExperimentConfig,
) -> S:
    """A YAML file (or the defaults) of `kind`, then `overrides`, checked as they load."""
    cfg = kind()
    if path is not None:
        path = Path(path)
        values = _read_yaml(path)
        if values is None:  # an empty file: the defaults
            values = {}
        if not isinstance(values, dict):
            raise LqerError(f"{path}: expected a mapping at the top level, got {shown(values)}")
        try:
            cfg = kind.validated(values)
        except LqerError as e:
            if kind is ExperimentConfig and _names_detector(values):
                raise LqerError(
                    f"{path}: a detector configuration; train it with `lqer detector train`"
                ) from None
            raise LqerError(f"{path}: {e}") from None
    return apply_overrides(cfg, overrides or [])


def _names_detector(values: dict[str, Any]) -> bool:
    model = values.get("model")
    return isinstance(model, dict) and model.get("name") == "fcos"
