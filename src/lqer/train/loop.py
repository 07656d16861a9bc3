"""The training loop: read it top to bottom.

Data lives in memory as uint8 on the training device; batches are indexed, augmented and
standardised there, so no DataLoader worker pool sits between the data and the model, and the
per-step path never waits for the GPU (losses are summed on the device, read once an epoch).
Under DistributedDataParallel each process runs this same loop on its slice of every global
batch. `lqer.train.session` builds or restores a run's parts, `lqer.train.steps` holds one
epoch's steps, `lqer.train.distributed` the plumbing.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lqer.config import ExperimentConfig
from lqer.data.dataset import ImageSet, load_experiment
from lqer.errors import LqerError
from lqer.eval.evaluate import decision, predict_logits, probabilities
from lqer.eval.metrics import best_f1_threshold, binary_metrics
from lqer.eval.predictions import prediction_rows, write_predictions
from lqer.io import write_text
from lqer.models.backbone import check_weights
from lqer.models.checkpoint import read_checkpoint, save_checkpoint, starting_weights
from lqer.quantum.layer import quantum_layers
from lqer.train import distributed, run_folder
from lqer.train.distributed import Group
from lqer.train.session import Session, build, open_folder, restore
from lqer.train.steps import (
    Diverged,
    TrainBatches,
    batch_indices,
    diverged,
    evaluate,
    train_epoch,
)

TRAIN_METRICS = ("auc", "f1", "sensitivity", "specificity", "ppv")  # logged each epoch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(
    cfg: ExperimentConfig, resume: bool = False, data: dict[str, ImageSet] | None = None
) -> Path:
    """Train `cfg.model` on `cfg.data`, or on already loaded `data`; return the run folder.

    With `train.devices` > 1 this starts that many local processes for DDP (gloo on the CPU,
    NCCL on GPUs); under torchrun, the processes torchrun started train together.
    """
    if cfg.train.devices < 1:
        raise LqerError(f"train.devices must be at least 1, got {cfg.train.devices}")
    if cfg.train.devices > 1 and not distributed.launched():
        distributed.launch(fit, cfg.train.devices, cfg, resume, data)
        return Path(cfg.out_dir)
    group = distributed.setup(cfg.train.device)
    try:
        # rank 0 holds the run folder for the whole run: a second run there is refused
        with run_folder.locked(Path(cfg.out_dir)) if group.main else contextlib.nullcontext():
            return train(cfg, group, resume, data)
    finally:
        distributed.teardown(group)


def train(
    cfg: ExperimentConfig, group: Group, resume: bool, data: dict[str, ImageSet] | None
) -> Path:
    tc = cfg.train
    seed_everything(tc.seed)
    torch.set_num_threads(tc.threads or distributed.cpu_threads(group))
    if group.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN may pick its fastest kernels
    saved = open_folder(cfg, group, resume)  # checked before any data is read
    start = None
    if saved is None:  # a resumed run's weights are in last.pt
        check_weights(cfg.model.weights)
        start = starting_weights(tc.init, cfg.model.name) if tc.init else None
    data = data or load_experiment(cfg.data, tc.seed)  # decoded once, kept on the device
    s = build(cfg, group, data)
    if start is not None:
        s.model.load_state_dict(start)
        s.log(f"starting from the weights of {tc.init}")
    restore(s, saved)
    step_model = distributed.wrap(s.model, group)  # the training steps go through DDP
    if group.world > 1:
        s.log(f"DistributedDataParallel: {group.world} processes, {tc.batch_size} images a step")
    pipeline = TrainBatches(data["train"].size, tc.augment, s.precision.channels_last,
                            tc.intensity)  # fmt: skip
    train_x, train_y = data["train"].images.to(group.device), data["train"].labels.to(group.device)
    for epoch in range(s.start_epoch + 1, tc.epochs + 1):
        row, val, threshold = run_epoch(s, step_model, epoch, train_x, train_y, pipeline)
        save_epoch(s, epoch, row, val, threshold)
    if "test" in data and group.main:
        score_test_split(s.model, cfg, data["test"], s.out, group.device)
    return s.out


def run_epoch(s: Session, step_model, epoch: int, train_x, train_y, pipeline) -> tuple:
    """Train one epoch, score the validation set, step the schedule: the log row and the
    validation metrics."""
    tc, group, model = s.cfg.train, s.group, s.model
    started, epoch_seed = time.perf_counter(), tc.seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)  # augmentation draws: same on resume, same on every rank
    for layer in quantum_layers(model):
        layer.reseed(epoch_seed)  # shot draws too, so a resumed run replays them exactly
    model.train()
    balanced, min_size = tc.imbalance == "balanced", max(2, group.world)
    batches = batch_indices(train_y, tc.batch_size, balanced, epoch_seed, min_size)
    bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{tc.epochs}", leave=False,
               disable=not (tc.progress and group.main))  # fmt: skip
    try:
        sums, seen, margins, targets = train_epoch(
            step_model, s.optimizer, train_x, train_y, batches, pipeline, s.weight, group,
            s.precision.bf16, bar, s.ema,
        )  # fmt: skip
    except Diverged as e:
        raise diverged(epoch, f"{e} (the loss became NaN or infinite)", tc) from None
    finally:
        bar.close()
    train_loss, correct = group.sum(sums).tolist()
    seen = int(group.sum(torch.tensor(seen, device=group.device)))
    # Scores as the model gave them while training (augmented, train mode): a learning
    # curve, not an estimate of performance.
    train = binary_metrics(group.concat(targets).numpy(), group.concat(margins).sigmoid())

    val_logits, val_loss = evaluate(s.scored, s.data["val"], s.weight, group)
    if not torch.isfinite(val_logits).all():
        raise diverged(epoch, "its outputs on the validation set became NaN or infinite", tc)
    val_labels, val_probs = s.data["val"].labels.numpy(), probabilities(val_logits)
    val = binary_metrics(val_labels, val_probs)
    s.scheduler.step(val_loss)  # every rank saw the same logits, so all step alike
    row = {
        "epoch": epoch,
        "lr_backbone": s.optimizer.param_groups[0]["lr"],
        "lr_head": s.optimizer.param_groups[1]["lr"],
        "train_loss": train_loss / seen,
        "train_accuracy": correct / seen,
        **{f"train_{k}": train[k] for k in TRAIN_METRICS},
        "val_loss": val_loss,
        **{f"val_{k}": val[k] for k in val if k not in ("n", "prevalence", "threshold",
                                                        "confusion_matrix")},
        "epoch_time": time.perf_counter() - started,
    }  # fmt: skip
    s.log(
        f"epoch {epoch}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f} | "
        f"val loss {val_loss:.4f} acc {val['accuracy']:.3f} auc {val['auc']:.3f} "
        f"f1 {val['f1']:.3f} | {row['epoch_time']:.1f}s"
    )
    return row, val, hold_out_threshold(val_labels, val_probs, s.cfg.data)


def hold_out_threshold(labels: np.ndarray, probs: np.ndarray, dc) -> dict | None:
    """The decision threshold best.pt stores: F1-max on the hold-out that chooses the epoch,
    so that a run used on a new site decides as that site's own patches suggest. None
    (commands then use 0.5) when the hold-out lacks a class."""
    if len(np.unique(labels)) < 2:
        return None
    where = f"the {dc.val_split}/ split" if dc.val_split else f"the hold-out of {dc.train_split}/"
    return {"value": best_f1_threshold(labels, probs), "rule": f"max F1 on {where}"}


def save_epoch(s: Session, epoch: int, row: dict, val: dict, threshold: dict | None) -> None:
    """Keep the best model by the selection metric, then last.pt, then the log."""
    tc = s.cfg.train
    score = val["auc"] if tc.select == "auc" else -row["val_loss"]
    improved = not math.isnan(score) and score > s.best_score
    s.best_score = score if improved else s.best_score
    if not s.group.main:
        return
    # best.pt before last.pt, the log last: a kill between any two leaves a folder that
    # resumes from last.pt's epoch, with the log last.pt carries.
    s.history.rows.append(row)
    if improved:
        chosen = {"threshold": threshold} if threshold else {}
        save_checkpoint(s.out / "best.pt", s.scored, s.cfg, epoch=epoch, val_metrics=val, **chosen)
    averaged = {"ema": s.ema.state_dict()} if s.ema is not None else {}
    save_checkpoint(
        s.out / "last.pt", s.model, s.cfg, epoch=epoch, best_score=s.best_score,
        optimizer=s.optimizer.state_dict(), scheduler=s.scheduler.state_dict(),
        history=s.history.rows, **averaged,
    )  # fmt: skip
    s.history.write()


def score_test_split(model, cfg: ExperimentConfig, test, out: Path, device) -> dict:
    """Score best.pt once on the test split, at the threshold it stores; the test split never
    influenced training."""
    best = out / "best.pt"
    saved = read_checkpoint(best) if best.exists() else {}
    if saved:
        model.load_state_dict(saved.pop("model"))
    probs = probabilities(predict_logits(model, test.images, test.size, device))
    metrics = binary_metrics(test.labels.numpy(), probs, decision(best, saved, None).threshold)
    write_text(out / "test_metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_predictions(
        out / "test_predictions.csv", prediction_rows(test, probs, cfg.model.name, "test")
    )
    return metrics
