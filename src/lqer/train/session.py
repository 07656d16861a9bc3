"""One training run's parts: the model, optimiser, schedule and log, built new or restored
from last.pt, so that the loop in `lqer.train.loop` reads as one short function per step."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lqer.config import ExperimentConfig
from lqer.data.dataset import ImageSet
from lqer.device import Precision, training_precision
from lqer.logs import logger
from lqer.models.checkpoint import read_checkpoint
from lqer.models.configured import from_config
from lqer.train import distributed, run_folder
from lqer.train.distributed import Group
from lqer.train.history import History
from lqer.train.steps import class_weights


@dataclass
class Session:
    """One training run's parts, passed to each step of the loop."""

    cfg: ExperimentConfig
    group: Group
    data: dict[str, ImageSet]
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    weight: torch.Tensor  # of each class in the loss
    precision: Precision
    ema: AveragedModel | None = None  # train.ema
    history: History | None = None
    start_epoch: int = 0
    best_score: float = -math.inf

    @property
    def scored(self) -> nn.Module:
        """The weights that the hold-out scores and best.pt keeps: the average, if any."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def out(self) -> Path:
        return Path(self.cfg.out_dir)

    def log(self, *args) -> None:
        if self.group.main:
            logger.info(" ".join(map(str, args)))


def open_folder(cfg: ExperimentConfig, group: Group, resume: bool) -> dict | None:
    """Check the run folder (and a resumed run's settings) on rank 0; the saved last.pt."""
    out, saved = Path(cfg.out_dir), None
    if group.main and resume:
        saved = run_folder.open_for_resume(out, cfg)
    elif group.main:
        run_folder.check_new(out, run_folder.data_inputs(cfg))
    group.barrier()  # the other ranks wait for rank 0's verdict on the folder
    return saved or (read_checkpoint(out / "last.pt") if resume else None)


def build(cfg: ExperimentConfig, group: Group, data: dict[str, ImageSet]) -> Session:
    """The model on its device, layer-wise learning rates, a plateau schedule on val loss."""
    tc, device, on_gpu = cfg.train, group.device, group.device.type == "cuda"
    precision = training_precision(device, data["train"].size, tc.amp, tc.channels_last)
    for name, part in data.items():
        neg, pos = part.counts
        skipped = f", {part.skipped} bad file(s) skipped" if part.skipped else ""
        if group.main:
            logger.info(f"{name}: {len(part)} images ({pos} positive, {neg} negative{skipped})")
    model = from_config(cfg.model)
    if group.world > 1:
        model = distributed.sync_batch_norm(model, device)
    model = model.to(device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if precision.bf16 and not on_gpu and group.main:
        logger.info("bf16 autocast and channels_last: this CPU has AMX (see train.amp)")
    groups = model.parameter_groups()
    optimizer = torch.optim.AdamW(
        [
            {"params": groups["backbone"], "lr": tc.lr_backbone},
            {"params": groups["head"], "lr": tc.lr_head},
        ],
        weight_decay=tc.weight_decay,
        fused=on_gpu or None,  # one kernel for all parameters on the GPU
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=tc.plateau_factor, patience=tc.plateau_patience
    )
    labels = data["train"].labels
    weight = class_weights(labels) if tc.imbalance == "weighted" else torch.ones(2)
    ema = None
    if tc.ema:  # use_buffers: batch norm's running statistics are averaged with the weights
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema), use_buffers=True)
    return Session(cfg, group, data, model, optimizer, scheduler, weight.to(device), precision,
                   ema)  # fmt: skip


def restore(s: Session, saved: dict | None) -> None:
    """Load a resumed run's state, or claim a new folder; write the config and the log."""
    if saved is not None:
        s.model.load_state_dict(saved["model"])
        s.optimizer.load_state_dict(saved["optimizer"])
        s.scheduler.load_state_dict(saved["scheduler"])
        if s.ema is not None:
            s.ema.load_state_dict(saved["ema"])
        s.start_epoch, s.best_score = saved["epoch"], saved["best_score"]
        s.log(f"resuming from {s.out / 'last.pt'} after epoch {s.start_epoch}")
    if s.group.main:
        if saved is None:
            run_folder.claim(s.out)
        s.cfg.save(s.out / "config.yaml")
        run_folder.write_skipped(s.out / "skipped_files.csv", s.data)
    if saved is None:
        s.history = History(s.out, tensorboard=s.cfg.train.tensorboard)
    elif "history" in saved:
        s.history = History(s.out, saved["history"], s.cfg.train.tensorboard)
        if s.group.main:
            s.history.write()
    else:  # a checkpoint from before last.pt carried the log
        s.history = History.resume(s.out, s.start_epoch, s.cfg.train.tensorboard)
    if s.cfg.train.compile:  # in place: the state dict keeps its keys
        getattr(s.model, "backbone", s.model).compile()
