"""The training loop: read it top to bottom.

Data lives in memory as uint8 on the training device; batches are indexed, augmented and
standardised there, so no DataLoader worker pool sits between the data and the model, and the
per-step path never waits for the GPU (losses are summed on the device, read once an epoch).
Under DistributedDataParallel each process runs this same loop on its slice of every global
batch; `lqer.train.distributed` holds the plumbing.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from lqer.config import ExperimentConfig
from lqer.data.dataset import ImageSet, load_experiment
from lqer.data.transforms import ToFloat, augmentation, standardize
from lqer.device import Precision, training_precision
from lqer.errors import LqerError
from lqer.eval.evaluate import decision, predict_logits, probabilities
from lqer.eval.metrics import best_f1_threshold, binary_metrics
from lqer.eval.predictions import prediction_rows, write_predictions
from lqer.io import atomic_path, write_text
from lqer.logs import logger
from lqer.models.backbone import check_weights
from lqer.models.checkpoint import read_checkpoint, save_checkpoint, starting_weights
from lqer.models.configured import from_config
from lqer.quantum.layer import quantum_layers
from lqer.train import distributed, run_folder
from lqer.train.distributed import Group


def batch_indices(
    labels: torch.Tensor, batch_size: int, balanced: bool, seed: int, min_size: int = 2
) -> list[torch.Tensor]:
    """Shuffled index batches for one epoch; `balanced` draws both classes equally often.

    A last batch of fewer than `min_size` images is dropped: batch norm cannot train on one
    image, and under DDP every rank needs at least one.
    """
    generator = torch.Generator().manual_seed(seed)
    n = len(labels)
    if balanced:
        counts = torch.bincount(labels.cpu(), minlength=2).float()
        weights = (1.0 / counts)[labels.cpu()]
        order = torch.multinomial(weights, n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    batches = list(order.to(labels.device).split(batch_size))  # one copy to the device an epoch
    return batches if len(batches[-1]) >= min_size else batches[:-1]


def class_weights(labels: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights, normalised so that a balanced set gets weight 1."""
    counts = torch.bincount(labels, minlength=2).float()
    return counts.sum() / (2 * counts)


class TrainBatches:
    """uint8 images (B, 1, S, S) -> the model's training input, augmented per sample.

    The whole global batch is augmented on every rank, from the same random stream, before
    a rank keeps its slice: DDP then sees exactly the images a single process would, and the
    augmentation, at the stored size, costs little beside the model.
    """

    def __init__(self, image_size: int, augment: str, channels_last: bool, intensity: str = "mild"):
        self.augment = augmentation(image_size, intensity) if augment != "none" else None
        self.positives_only = augment == "positives"
        self.to_float, self.prepare = ToFloat(), standardize(image_size)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, raw: torch.Tensor, labels: torch.Tensor, part: slice) -> torch.Tensor:
        if self.augment is None:
            x = self.to_float(raw[part])
        elif self.positives_only:
            keep = (labels == 1).view(-1, 1, 1, 1)
            x = torch.where(keep, self.augment(raw), self.to_float(raw))[part]
        else:
            x = self.augment(raw)[part]
        return self.prepare(x).contiguous(memory_format=self.memory_format)


TRAIN_METRICS = ("auc", "f1", "sensitivity", "specificity", "ppv")


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    batches: list[torch.Tensor],
    pipeline: TrainBatches,
    weight: torch.Tensor,
    group: Group | None = None,
    use_amp: bool = False,
    bar: tqdm | None = None,
    ema: AveragedModel | None = None,
) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]:
    """One pass over `batches`; returns (sum of batch loss x batch size, correct) on the device,
    the number of images, and the stenosis logit margins and labels, for this rank's share.
    The bar shows the epoch's mean loss so far; `ema` averages the weights after each step."""
    group = group or Group()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    seen, shown, margins, targets, losses = 0, 0, [], [], []
    for step, index in enumerate(batches):
        y_all = labels[index]
        part = group.part(len(index))
        x, y = pipeline(images[index], y_all, part), y_all[part]
        with torch.autocast(images.device.type, torch.bfloat16, enabled=use_amp):
            logits = model(x)
        # The weighted mean over the global batch; DDP averages gradients over the ranks.
        loss = F.cross_entropy(logits.float(), y, weight=weight, reduction="sum")
        loss = loss * (group.world / weight[y_all].sum())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        loss_sum += loss.detach() * (len(index) / group.world)
        losses.append(loss.detach())
        correct += (logits.argmax(1) == y).sum()
        margins.append((logits[:, 1] - logits[:, 0]).detach().float())
        targets.append(y)
        seen += len(y)
        if bar is not None:
            shown += len(index)
            if images.device.type == "cpu" or step % 10 == 0:  # reading it waits for a GPU
                bar.set_postfix(loss=f"{loss_sum.item() / shown:.4f}", refresh=False)
            bar.update()
    first_bad = _first_non_finite(losses)
    any_bad = group.sum(torch.tensor(float(first_bad is not None), device=images.device))
    if any_bad.item():  # every rank stops, so none waits for the others
        raise Diverged(first_bad + 1 if first_bad is not None else None, len(batches))
    sums = torch.stack([loss_sum, correct.to(loss_sum.dtype)])
    return sums, seen, torch.cat(margins), torch.cat(targets)


class Diverged(Exception):
    """The loss became NaN or infinite at step `step` of `steps`."""

    def __init__(self, step: int | None, steps: int):
        super().__init__(f"step {step if step is not None else '?'} of {steps}")
        self.step, self.steps = step, steps


def diverged(epoch: int, what: str, tc) -> LqerError:
    """What to tell the user, and which checkpoint still holds a sound model."""
    kept = f"; last.pt holds epoch {epoch - 1}" if epoch > 1 else ""
    return LqerError(
        f"training diverged in epoch {epoch}, {what}; try a lower learning rate "
        f"(train.lr_head={tc.lr_head:g}, train.lr_backbone={tc.lr_backbone:g}){kept}"
    )


def _first_non_finite(values: list[torch.Tensor]) -> int | None:
    """Checked once an epoch, so that the steps never wait for the GPU."""
    if not values:
        return None
    bad = (~torch.isfinite(torch.stack(values))).nonzero()
    return int(bad[0]) if len(bad) else None


def evaluate(model: nn.Module, data: ImageSet, weight: torch.Tensor, group: Group):
    """Logits of every image (each rank scores its slice) and the weighted mean loss."""
    part = group.part(len(data))
    logits = predict_logits(model, data.images[part], data.size, group.device)
    logits = group.gather(logits, len(data))
    return logits, F.cross_entropy(logits, data.labels, weight=weight.cpu()).item()


class History:
    """Per-epoch log written as CSV and as JSON lines; rewritten whole, atomically, each epoch.

    last.pt carries the rows too, so a run killed between its checkpoint and its log resumes
    with the log that matches the checkpoint."""

    def __init__(self, out_dir: Path, rows: list[dict] | None = None, tensorboard: bool = False):
        self.out_dir = out_dir
        self.rows = rows or []
        self.tensorboard = tensorboard

    @classmethod
    def resume(cls, out_dir: Path, epochs_done: int, tensorboard: bool = False) -> History:
        path = out_dir / "history.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return cls(out_dir, [r for r in rows if r["epoch"] <= epochs_done], tensorboard)

    def write(self) -> None:
        if not self.rows:
            return
        row = self.rows[-1]
        if self.tensorboard:
            write_scalars(self.out_dir / "tensorboard", row)
        write_text(self.out_dir / "history.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
        lines = [",".join(row)]
        lines += [",".join(_fmt(r.get(k)) for k in row) for r in self.rows]
        write_text(self.out_dir / "history.csv", "\n".join(lines) + "\n")


def write_scalars(folder: Path, row: dict) -> None:
    """One epoch's numbers as TensorBoard scalars (`tensorboard --logdir RUN/tensorboard`).
    A resumed run appends; TensorBoard shows the newest value of a repeated epoch."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder)) as writer:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


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


@dataclass
class Session:
    """One training run's parts, so that each step below reads as one short function."""

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
        write_skipped(s.out / "skipped_files.csv", s.data)
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


def write_skipped(path: Path, data: dict[str, ImageSet]) -> None:
    """The files --skip-bad left out, per split, so that nobody has to guess which."""
    rows = [(name, p, why) for name, part in data.items() for p, why in part.bad]
    if rows:
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            csv.writer(f).writerows([("split", "path", "reason"), *rows])


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
