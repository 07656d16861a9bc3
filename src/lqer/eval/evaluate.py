"""Scoring trained models: logits for a batch of images, metrics for a folder, predictions for
files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lqer.data.dataset import ImageSet, check_both_classes, decode
from lqer.data.frames import collect_frames
from lqer.data.layout import known_label, list_folder
from lqer.data.transforms import eval_transform
from lqer.device import pick_device
from lqer.errors import LqerError
from lqer.eval.metrics import binary_metrics
from lqer.eval.predictions import Prediction, prediction_rows, write_predictions
from lqer.guarded_yaml import shown
from lqer.io import check_output_file, output_file, written_by_lqer
from lqer.logs import progress
from lqer.models.checkpoint import load_checkpoint
from lqer.threshold import checked_threshold


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    images: torch.Tensor,
    image_size: int,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    flip: bool = False,
) -> torch.Tensor:
    """(N, 2) float32 logits on the CPU for uint8 images (N, 1, S, S). `flip`: test-time
    augmentation, the mean of the logits of each image and its left-right mirror (training
    flips patches, so both are in-distribution)."""
    device = torch.device(device)
    prepare = eval_transform(image_size)
    was_training = model.training
    model.eval()
    out = []
    for start in progress(range(0, len(images), batch_size), f"predicting {len(images)} images"):
        x = prepare(images[start : start + batch_size].to(device, non_blocking=True))
        with (
            torch.no_grad(),
            torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"),
        ):
            logits = model(x).float()
            if flip:
                logits = (logits + model(x.flip(-1)).float()) / 2
            out.append(logits.cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 2)


def probabilities(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits, dim=1)[:, 1].numpy()


def predict_proba(
    model, images, image_size, device="cpu", batch_size=256, flip: bool = False
) -> np.ndarray:
    """Probability of stenosis for each image."""
    return probabilities(predict_logits(model, images, image_size, device, batch_size, flip))


@dataclass(frozen=True)
class Decision:
    threshold: float
    why: str  # where the threshold came from, for the user

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", checked_threshold(self.threshold, "threshold"))

    def __str__(self) -> str:
        return f"threshold {self.threshold:.4g} ({self.why})"


def decision(checkpoint: str | Path, info: dict, threshold: float | None) -> Decision:
    """The threshold asked for, else the one stored with the checkpoint, else 0.5."""
    if threshold is not None:
        return Decision(checked_threshold(threshold, "`threshold`"), "as asked")
    if "threshold" not in info:
        return Decision(0.5, f"{checkpoint} stores none; the default")
    stored = info["threshold"]
    if not isinstance(stored, dict) or "value" not in stored:
        raise LqerError(f"{checkpoint}: its stored threshold is not a {{value, rule}} mapping")
    value = checked_threshold(stored["value"], f"{checkpoint}: stored threshold")
    rule = stored.get("rule", "")
    rule = rule[:80] if isinstance(rule, str) else shown(rule)
    return Decision(value, f"stored with {checkpoint}: {rule}")


def score_images(
    checkpoint: str | Path,
    items: list[tuple[Path, int]],
    device: str = "auto",
    skip_bad: bool = False,
    where: str = "",
    threshold: float | None = None,
    screened: bool = False,
    tta: bool = False,
) -> tuple[ImageSet, np.ndarray, str, Decision]:
    """Decode (path, label) items with a checkpoint's preprocessing; its stenosis probabilities,
    its model's name and the decision threshold to use. `screened`: see `decode`; `tta`: the
    test-time flip of `predict_logits`."""
    model, cfg, info = load_checkpoint(checkpoint)
    dev = pick_device(device)
    data = decode(items, cfg.data.image_size, skip_bad, cfg.data.max_pixels, where,
                  screened=screened)  # fmt: skip
    probs = predict_proba(model.to(dev), data.images, data.size, dev, flip=tta)
    return data, probs, cfg.model.name, decision(checkpoint, info, threshold)


def default_eval_path(checkpoint: str | Path, data_dir: str | Path) -> Path:
    """`eval_<folder name>.json` beside the checkpoint, unless that file is not lqer's or
    scores another folder of the same name: then the name also carries a hash of this
    folder's full path."""
    data_dir = Path(data_dir).resolve()
    path = Path(checkpoint).parent / f"eval_{data_dir.name or 'data'}.json"
    if not path.exists() or written_by_lqer(path) and _scored_folder(path) == data_dir:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:8]
    return path.with_name(f"eval_{data_dir.name or 'data'}-{digest}.json")


def _scored_folder(path: Path) -> Path | None:
    try:
        return Path(json.loads(path.read_text())["data"]).resolve()
    except (OSError, ValueError, TypeError, KeyError):
        return None


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_dir: str | Path,
    out: str | Path | None = None,
    device: str = "auto",
    skip_bad: bool = False,
    threshold: float | None = None,
    tta: bool = False,
) -> dict:
    """Metrics of a checkpoint on a `{positive,negative}` folder; written as JSON to `out`.
    Without `threshold`, the checkpoint's stored one decides (see `decision`)."""
    if out is not None:
        check_output_file(out, "`out`", [checkpoint, data_dir])
    items = list_folder(data_dir)
    data, probs, _, chosen = score_images(
        checkpoint, items, device, skip_bad, f" in {data_dir}", threshold, tta=tta
    )
    check_both_classes(data, str(data_dir))
    metrics = binary_metrics(data.labels.numpy(), probs, chosen.threshold)
    metrics.update(
        threshold_source=chosen.why,
        tta=tta,
        checkpoint=str(checkpoint),
        data=str(Path(data_dir).resolve()),
        skipped=data.skipped,
        skipped_files=[p for p, _ in data.bad],
    )
    if out is not None:
        with output_file(out) as tmp:
            tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def predict_rows(
    checkpoint: str | Path,
    paths: list[str | Path],
    device: str = "auto",
    skip_bad: bool = False,
    threshold: float | None = None,
    tta: bool = False,
) -> tuple[list[Prediction], ImageSet, Decision]:
    """A prediction per image (skipped ones included); the true label is filled where a file
    sits under a positive/ or negative/ folder."""
    items = [(ref, known_label(ref.path)) for ref in collect_frames(paths)]
    data, probs, model, chosen = score_images(
        checkpoint, items, device, skip_bad, "", threshold, screened=True, tta=tta
    )
    return prediction_rows(data, probs, model, threshold=chosen.threshold), data, chosen


def predict_files(
    checkpoint: str | Path,
    paths: list[str | Path],
    out: str | Path,
    device: str = "auto",
    skip_bad: bool = False,
    threshold: float | None = None,
    tta: bool = False,
) -> tuple[ImageSet, Decision]:
    """Write the predictions file for `paths`, skipped images included."""
    check_output_file(out, "`out`", [checkpoint, *paths])
    rows, data, chosen = predict_rows(checkpoint, paths, device, skip_bad, threshold, tta)
    write_predictions(out, rows, loose=True)
    return data, chosen
