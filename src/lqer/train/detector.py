"""Training a whole-frame detector: read it top to bottom.

Frames live in memory at the detector's input size. Each epoch trains on the training frames
(flipped and jittered per frame, in a seeded order), then scores the validation frames; best.pt
keeps the epoch with the highest FROC sensitivity at 1 false positive per frame (AP50 breaks a
tie), last.pt everything a resume needs. The test split is scored once, with best.pt, at the end.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from lqer.config import RESUMABLE
from lqer.data.annotations import Detection
from lqer.data.frame_sets import Frames, load_frame_sets
from lqer.data.transforms import IntensityJitter
from lqer.detection_config import DetectionConfig, DetectorConfig
from lqer.errors import LqerError
from lqer.eval.detection import detection_summary
from lqer.io import check_own_folder, owned_folder, remove_stale_temporaries, write_text
from lqer.logs import logger
from lqer.models.detector import build_detector, detect, detector_from, save_detector
from lqer.sections import changed_keys
from lqer.train.history import History

KIND = "detector"
SELECT = "1"  # the FROC rate (false positives per frame) that picks best.pt


def fit_detector(cfg: DetectionConfig, resume: bool = False) -> Path:
    """Train `cfg.model` on `cfg.data`; returns the run folder."""
    out = check_own_folder(cfg.out_dir, KIND, "`out`", {"data.root": cfg.data.root})
    if (out / "last.pt").exists() and not resume:
        raise LqerError(f"{out} already holds a detector run; use `resume` or another `out`")
    if resume and not (out / "last.pt").is_file():
        raise LqerError(f"`resume`: {out} holds no last.pt to resume from")
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    torch.manual_seed(cfg.train.seed)
    sets = load_frame_sets(cfg.data, cfg.train.seed)
    for name, part in sets.items():
        stenoses = sum(len(b) for b in part.boxes)
        logger.info(f"{name}: {len(part)} frames, {stenoses} stenoses")
    model = build_detector(**cfg.detector_arguments())
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg), weight_decay=cfg.train.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.train.epochs)
    warmup = warmup_schedule(optimizer, cfg.train.warmup_steps)  # per step, inside the cosine
    with owned_folder(out, KIND):
        history, start, best = History(out, tensorboard=cfg.train.tensorboard), 0, -math.inf
        if resume:
            history, start, best = restore(out, cfg, model, optimizer, schedule, warmup)
        cfg.save(out / "config.yaml")
        for epoch in range(start + 1, cfg.train.epochs + 1):
            started = time.perf_counter()
            loss = train_epoch(model, optimizer, warmup, sets["train"], cfg, epoch)
            schedule.step()
            val = score(model, sets["val"], cfg.model)
            row = {"epoch": epoch, "train_loss": loss,
                   "val_sensitivity_at_1fp": val["froc"][SELECT],
                   "val_ap50": val["ap50"], "val_ap": val["ap"],
                   "lr": optimizer.param_groups[0]["lr"],
                   "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
            history.rows.append(row)
            logger.info(json.dumps(row))
            value = (val["froc"][SELECT] or 0.0) + 1e-3 * (val["ap50"] or 0.0)
            if value > best:
                best = value
                save_detector(out / "best.pt", model, cfg, epoch=epoch, val_metrics=val)
            save_detector(out / "last.pt", model, cfg, epoch=epoch, best=best,
                          optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
                          warmup=warmup.state_dict() if warmup else None,
                          history=history.rows)  # fmt: skip
            history.write()
        if "test" in sets:
            score_test(out, sets["test"], cfg)
    return out


def parameter_groups(model: torch.nn.Module, cfg: DetectionConfig) -> list[dict]:
    """The circuit's (or its twin's) head at its own rate, the rest at the detector's."""
    head = [p for name, p in model.named_parameters() if ".cls_logits.head." in name]
    ids = {id(p) for p in head}
    rest = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": rest, "lr": cfg.train.lr}]
    return groups + ([{"params": head, "lr": cfg.train.lr_head}] if head else [])


def warmup_schedule(optimizer: torch.optim.Optimizer, steps: int):
    """Every rate from 1/1000 of itself up to itself over `steps` optimizer steps (None: no
    warmup). Chained with the cosine: both scale the current rate."""
    if steps == 0:
        return None
    return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-3, total_iters=steps)


def restore(out: Path, cfg: DetectionConfig, model, optimizer, schedule, warmup):
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    saved = DetectionConfig.from_saved(state["config"])
    changed = [k for k in changed_keys(saved, cfg) if k not in (*RESUMABLE, "out_dir")]
    if changed:
        raise LqerError(f"`resume`: {out} was trained with other settings ({', '.join(changed)}); "
                        f"only {', '.join(RESUMABLE)} may change")  # fmt: skip
    if cfg.train.epochs <= state["epoch"]:
        raise LqerError(f"`resume`: {out} has already trained {state['epoch']} epoch(s)")
    removed = remove_stale_temporaries(out)
    if removed:
        logger.info(
            f"removed {len(removed)} temporary file(s) left by an interrupted write in {out}"
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    if warmup is not None:
        warmup.load_state_dict(state["warmup"])
    logger.info(f"resuming from {out / 'last.pt'} after epoch {state['epoch']}")
    return History(out, state["history"], cfg.train.tensorboard), state["epoch"], state["best"]


def train_epoch(
    model, optimizer, warmup, frames: Frames, cfg: DetectionConfig, epoch: int
) -> float:
    """One pass over the frames in a seeded order, the warmup (if any) stepped per batch; the
    mean loss."""
    model.train()
    generator = torch.Generator().manual_seed(cfg.train.seed * 100_003 + epoch)
    torch.manual_seed(cfg.train.seed * 100_003 + epoch)  # the jitter's draws
    order = torch.randperm(len(frames), generator=generator)
    batches = order.split(cfg.train.batch_size)
    jitter = IntensityJitter(brightness=0.15, contrast=0.15)
    total, bar = 0.0, tqdm(batches, desc=f"epoch {epoch}", leave=False,
                           disable=not cfg.train.progress)  # fmt: skip
    for batch in bar:
        images, targets = augmented(frames, batch.tolist(), cfg.train.augment, jitter, generator)
        losses = model(images, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise LqerError(f"training diverged in epoch {epoch}; lower train.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        if warmup is not None:
            warmup.step()
        value = loss.item()
        total += value * len(batch)
        bar.set_postfix(loss=f"{value:.3f}")
    return total / len(frames)


def augmented(frames: Frames, index: list[int], augment: bool, jitter, generator):
    """Float (3, S, S) images in [0, 1] and FCOS targets; flipped left-right at random."""
    images, targets = [], []
    size = frames.images.shape[-1]
    for i in index:
        image = frames.images[i].float().div(255)[None]
        boxes = frames.boxes[i].clone()
        if augment and torch.rand((), generator=generator) < 0.5:
            image = image.flip(-1)
            boxes[:, [0, 2]] = size - boxes[:, [2, 0]]
        if augment:
            image = jitter(image[None])[0]
        images.append(image.expand(3, -1, -1))
        targets.append({"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64)})
    return images, targets


def score(model, frames: Frames, settings: DetectorConfig) -> dict:
    """Every detection metric of `model` on `frames` (`lqer.eval.detection`), at its
    min_score and with its test-time flip."""
    found = detect(model, frames.images, frames.scales, flip=settings.flip)
    if regression_died(found):
        logger.warning(
            "every box the detector predicts has zero width or height: its box regression has "
            "died, and training will not revive it; train again with train.warmup_steps > 0 or "
            "a lower train.lr"
        )
    return detection_summary(dict(zip(frames.ids, found, strict=True)), frames.truth,
                             settings.min_score)  # fmt: skip


def regression_died(found: list[list[Detection]]) -> bool:
    """Whether every candidate has no area: FCOS's ReLU gives 0 for a channel pushed below
    zero everywhere, and then no gradient to bring it back."""
    boxes = [d for frame in found for d in frame]
    return bool(boxes) and all(d.w == 0 or d.h == 0 for d in boxes)


def score_test(out: Path, test: Frames, cfg: DetectionConfig) -> dict:
    """best.pt on the test split, once: test_metrics.json."""
    state = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    model, _ = detector_from(state, str(out / "best.pt"))
    metrics = score(model, test, cfg.model)
    write_text(out / "test_metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics
