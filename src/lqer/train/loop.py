"""The training loop: read it top to bottom.

Data lives in memory as uint8 on the training device; batches are indexed, augmented and
standardised there, so no DataLoader worker pool sits between the data and the model.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lqer.config import ExperimentConfig
from lqer.data.dataset import load_experiment
from lqer.data.transforms import ToFloat, augmentation, standardize
from lqer.errors import LqerError
from lqer.eval.evaluate import pick_device, predict_logits, probabilities, write_predictions
from lqer.eval.metrics import binary_metrics
from lqer.io import write_text
from lqer.models import build_model
from lqer.train.checkpoint import read_checkpoint, save_checkpoint


def batch_indices(labels: torch.Tensor, batch_size: int, balanced: bool, seed: int):
    """Shuffled index batches for one epoch; `balanced` draws both classes equally often."""
    generator = torch.Generator().manual_seed(seed)
    n = len(labels)
    if balanced:
        counts = torch.bincount(labels, minlength=2).float()
        weights = (1.0 / counts)[labels]
        order = torch.multinomial(weights, n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


def class_weights(labels: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights, normalised so that a balanced set gets weight 1."""
    counts = torch.bincount(labels, minlength=2).float()
    return counts.sum() / (2 * counts)


class History:
    """Per-epoch log written as CSV and as JSON lines; rewritten whole, atomically, each epoch."""

    def __init__(self, out_dir: Path, rows: list[dict] | None = None):
        self.out_dir = out_dir
        self.rows = rows or []

    @classmethod
    def resume(cls, out_dir: Path, epochs_done: int) -> History:
        path = out_dir / "history.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return cls(out_dir, [r for r in rows if r["epoch"] <= epochs_done])

    def append(self, row: dict) -> None:
        self.rows.append(row)
        write_text(self.out_dir / "history.jsonl", "".join(json.dumps(r) + "\n" for r in self.rows))
        lines = [",".join(row)]
        lines += [",".join(_fmt(r.get(k)) for k in row) for r in self.rows]
        write_text(self.out_dir / "history.csv", "\n".join(lines) + "\n")


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(cfg: ExperimentConfig, resume: bool = False) -> Path:
    """Train `cfg.model` on `cfg.data`; return the run folder."""
    out = Path(cfg.out_dir)
    tc = cfg.train
    seed_everything(tc.seed)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = pick_device(tc.device)
    use_amp = tc.amp and device.type == "cuda"

    # Data: decoded once, kept on the device.
    data = load_experiment(cfg.data, tc.seed)
    for name, part in data.items():
        neg, pos = part.counts
        skipped = f", {part.skipped} bad file(s) skipped" if part.skipped else ""
        print(f"{name}: {len(part)} images ({pos} positive, {neg} negative{skipped})")
    train_x = data["train"].images.to(device)
    train_y = data["train"].labels.to(device)
    size = cfg.data.image_size
    augment, prepare, to_float = augmentation(size), standardize(size), ToFloat()

    # Model, layer-wise learning rates, plateau schedule on validation loss.
    model = build_model(cfg.model).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    groups = model.parameter_groups()
    optimizer = torch.optim.AdamW(
        [
            {"params": groups["backbone"], "lr": tc.lr_backbone},
            {"params": groups["head"], "lr": tc.lr_head},
        ],
        weight_decay=tc.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=tc.plateau_factor, patience=tc.plateau_patience
    )
    weight = class_weights(data["train"].labels) if tc.imbalance == "weighted" else None
    loss_fn = nn.CrossEntropyLoss(weight=weight.to(device) if weight is not None else None)

    start_epoch, best_score = 0, -math.inf
    if resume:
        state = read_checkpoint(out / "last.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_score = state["epoch"], state["best_score"]
        print(f"resuming from {out / 'last.pt'} after epoch {start_epoch}")
    elif (out / "last.pt").exists():
        raise LqerError(f"{out} already holds a run; use --resume or another --out")
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    history = History.resume(out, start_epoch) if resume else History(out)

    for epoch in range(start_epoch + 1, tc.epochs + 1):
        started = time.perf_counter()
        torch.manual_seed(tc.seed * 100_003 + epoch)  # augmentation draws: same on resume
        model.train()
        batches = batch_indices(data["train"].labels, tc.batch_size, tc.imbalance == "balanced",
                                seed=tc.seed * 100_003 + epoch)  # fmt: skip
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(batches, desc=f"epoch {epoch}/{tc.epochs}", leave=False, disable=not tc.progress)
        for index in bar:
            index = index.to(device)
            raw, y = train_x[index], train_y[index]
            x = to_float(raw)
            if tc.augment != "none":
                augmented = augment(raw)
                keep = (y == 1) if tc.augment == "positives" else torch.ones_like(y, dtype=bool)
                x = torch.where(keep.view(-1, 1, 1, 1), augmented, x)
            x = prepare(x)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, torch.bfloat16, enabled=use_amp):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}")

        val_logits = predict_logits(model, data["val"].images, size, device)
        val_y = data["val"].labels
        val_loss = loss_fn.cpu()(val_logits, val_y).item()
        loss_fn.to(device)
        val = binary_metrics(val_y.numpy(), probabilities(val_logits))
        scheduler.step(val_loss)

        row = {
            "epoch": epoch,
            "lr_backbone": optimizer.param_groups[0]["lr"],
            "lr_head": optimizer.param_groups[1]["lr"],
            "train_loss": total_loss / seen,
            "train_accuracy": correct / seen,
            "val_loss": val_loss,
            **{f"val_{k}": val[k] for k in val if k not in ("n", "prevalence", "threshold",
                                                            "confusion_matrix")},
            "epoch_time": time.perf_counter() - started,
        }  # fmt: skip
        history.append(row)
        print(
            f"epoch {epoch}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.3f} | "
            f"val loss {val_loss:.4f} acc {val['accuracy']:.3f} auc {val['auc']:.3f} "
            f"f1 {val['f1']:.3f} | {row['epoch_time']:.1f}s"
        )

        score = val["auc"] if tc.select == "auc" else -val_loss
        if not math.isnan(score) and score > best_score:
            best_score = score
            save_checkpoint(out / "best.pt", model, cfg, epoch=epoch, val_metrics=val)
        save_checkpoint(
            out / "last.pt", model, cfg, epoch=epoch, best_score=best_score,
            optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
        )  # fmt: skip

    if "test" in data:
        score_test_split(model, cfg, data["test"], out, device)
    return out


def score_test_split(model, cfg: ExperimentConfig, test, out: Path, device) -> dict:
    """Score best.pt once on the test split; the test split never influenced training."""
    best = out / "best.pt"
    if best.exists():
        model.load_state_dict(read_checkpoint(best)["model"])
    probs = probabilities(predict_logits(model, test.images, cfg.data.image_size, device))
    metrics = binary_metrics(test.labels.numpy(), probs)
    write_text(out / "test_metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_predictions(out / "test_predictions.csv", test, probs)
    return metrics
