"""Typed configuration of a whole-frame stenosis detector, checked when it is loaded, like an
experiment's (`lqer.config`): a YAML file plus `section.key=value` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from lqer.config import QuantumConfig, circuit_of, execution_of, load_config
from lqer.sections import Bool, Count, Float, NoneWord, OptionalCount, Section, Seed, Text

HEADS = ("none", "lqer", "classical")  # the box classifier's extra head: none, circuit, twin


class FramesConfig(Section):
    prefix: ClassVar[str] = "data"

    # ARCADE's layout: <root>/<split>/images/ and <root>/<split>/annotations/<split>.json
    root: Text = ""
    format: Literal["coco", "voc", "yolo"] = "coco"
    train_split: Text = "train"  # frames and their annotations
    # Choices (best.pt, the thresholds) use `val_split` if given, else a hold-out of the
    # training frames, identical frames kept together; `test_split` is scored once.
    val_split: Annotated[Text | None, NoneWord] = None
    hold_out: Annotated[Float, Field(gt=0, lt=1, description="a part of the training frames")] = (
        0.15
    )
    test_split: Annotated[Text | None, NoneWord] = "val"  # scored once, at the end
    input_size: Count(1024, "16 to 1024 px: frames are resized to this side", 16) = 256
    limit: OptionalCount(100_000, "frames per split, at least 4", 4) = None  # quick runs


class DetectorConfig(Section):
    prefix: ClassVar[str] = "model"

    name: Literal["fcos"] = "fcos"  # torchvision's FCOS on a ResNet18 feature pyramid
    head: Literal[HEADS] = "lqer"  # the box classifier's extra head: none, the circuit, or its twin
    # none, or a file: an lqer patch checkpoint or a ResNet18 state dict for the backbone
    backbone_weights: Text = "none"
    quantum: QuantumConfig = Field(default_factory=QuantumConfig)
    max_detections: Count(1000, "1 to 1000 candidates per frame") = 50  # kept per frame
    # candidates scoring less are dropped
    min_score: Annotated[Float, Field(ge=0, le=1, description="a probability")] = 0.05
    # test-time flip when scoring frames: the frame and its mirror, candidates pooled by NMS;
    # twice the time. Training's hold-out and shipped thresholds are scored the same way.
    flip: Bool = False


class DetectorTrainConfig(Section):
    prefix: ClassVar[str] = "train"

    epochs: Count(10_000, "1 to 10,000 epochs") = 24
    batch_size: Count(256, "1 to 256 frames") = 8
    # AdamW's usual rate for detectors: at 1e-3 FCOS's box regression can die in epoch 1
    lr: Annotated[Float, Field(gt=0, description="the detector must learn")] = 1e-4
    lr_head: Annotated[Float, Field(gt=0, description="the circuit's head must learn")] = 1e-2
    weight_decay: Annotated[Float, Field(ge=0)] = 1e-4  # AdamW's
    # The rates rise linearly from 1/1000 over the first optimizer steps, as torchvision's
    # detection recipes do: at full rate, the first AdamW step can push a box-regression
    # channel below zero everywhere, and FCOS's ReLU then never lets it recover.
    warmup_steps: Count(100_000, "0 (none) to 100,000 optimizer steps", 0) = 100
    augment: Bool = True  # flips and intensity jitter
    seed: Seed = 0  # of the hold-out, the initial weights, the order and the augmentation
    threads: OptionalCount(1024, "1 to 1024 threads") = None
    progress: Bool = True  # a progress bar per epoch
    tensorboard: Bool = False  # loss, metrics and learning rate per epoch in <run>/tensorboard


class DetectionConfig(Section):
    data: FramesConfig = Field(default_factory=FramesConfig)
    model: DetectorConfig = Field(default_factory=DetectorConfig)
    train: DetectorTrainConfig = Field(default_factory=DetectorTrainConfig)
    out_dir: Text = "runs/detector"

    @classmethod
    def from_saved(cls, values: Any) -> DetectionConfig:
        """A checkpoint's or a run's configuration as it was trained: one saved before
        train.warmup_steps existed trained without warmup."""
        train = values.get("train") if isinstance(values, dict) else None
        if isinstance(train, dict) and "warmup_steps" not in train:
            values = {**values, "train": {**train, "warmup_steps": 0}}
        return cls.validated(values)

    def detector_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `lqer.models.detector.build_detector`."""
        model = self.model
        return {
            "input_size": self.data.input_size,
            "head": model.head,
            "circuit": circuit_of(model.quantum),
            "execution": execution_of(model.quantum),
            "backbone_weights": model.backbone_weights,
            "min_score": model.min_score,
            "max_detections": model.max_detections,
        }


def load_detection_config(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> DetectionConfig:
    return load_config(path, overrides, kind=DetectionConfig)
