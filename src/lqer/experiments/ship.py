"""Turn a finished run into shipped weights: thresholds chosen on the hold-out, metrics with
intervals on the test split, fp16 safetensors and metadata (`lqer.models.weights`)."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

from lqer.data.dataset import decode, load_experiment
from lqer.data.frame_sets import load_frame_sets
from lqer.data.layout import list_folder
from lqer.device import pick_device
from lqer.errors import LqerError
from lqer.eval import metrics
from lqer.eval.detection import detection_summary, froc, operating_threshold
from lqer.eval.evaluate import predict_proba
from lqer.io import check_output_file
from lqer.models.checkpoint import load_checkpoint
from lqer.models.detector import detect, load_detector
from lqer.models.weights import export, weight_files

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # a file name, never a path

LICENCE = (
    "weights MIT, like the code; trained on P-ADSD, which derives from ADSD (CC BY 4.0): "
    "credit Danilov et al. 2021 and Ovalle-Magallanes et al. 2022 (MODEL_CARD.md)"
)


def ship(
    run: Path,
    name: str,
    folder: Path,
    target_sensitivity: float = 0.90,
    n_boot: int = 2000,
    sites: dict[str, Path] | None = None,
    licence: str = LICENCE,
    flip: bool = False,
) -> tuple[Path, Path]:
    """Weights NAME from `run`/best.pt into `folder`. The hold-out that selected the epoch
    also chooses the thresholds; the test split, and each of `sites` (name -> a folder with
    positive/ and negative/), is scored once with them fixed. `flip`: a detector scores
    frames with the test-time flip from then on, its thresholds chosen with it."""
    if not 0 < target_sensitivity <= 1:  # NaN too: no threshold reaches it
        raise LqerError(f"`target_sensitivity` must lie in (0, 1], got {target_sensitivity}")
    if not NAME.fullmatch(name):
        raise LqerError(
            f"`name`: {name[:80]!r} is not a plain name (letters, digits, '.', '_' and '-', "
            "at most 64, no folders)"
        )
    for path in weight_files(folder, name):
        check_output_file(path, "`out`", [run])
    detector = load_detector(run / "best.pt")
    if detector is not None:
        if flip:  # else as the run was configured
            detector[1].model.flip = True
        return ship_detector(run, name, folder, detector, target_sensitivity)
    if flip:
        raise LqerError("`flip` is for whole-frame detectors; a patch classifier takes the "
                        "flip when it predicts (`tta`)")  # fmt: skip
    model, cfg, state = load_checkpoint(run / "best.pt")
    data = load_experiment(cfg.data, cfg.train.seed)  # the same hold-out as in training
    device = pick_device("auto")
    val = predict_proba(model.to(device), data["val"].images, data["val"].size, device)
    y_val = data["val"].labels.numpy()
    rule = f"sensitivity >= {target_sensitivity:.2f} on the hold-out of {cfg.data.train_split}/"
    threshold = metrics.threshold_for_sensitivity(y_val, val, target_sensitivity)
    meta = {
        "summary": f"{cfg.model.name} from {run.name}, epoch {state.get('epoch')}",
        "created": datetime.date.today().isoformat(),
        "training_data": {
            "root": Path(cfg.data.root).name, "split": cfg.data.train_split,
            "images": len(data["train"]), "hold_out": len(data["val"]),
            "counts": {"negative": data["train"].counts[0], "positive": data["train"].counts[1]},
        },
        "threshold": {"value": threshold, "rule": rule},
        "threshold_max_f1": metrics.best_f1_threshold(y_val, val),
        "metrics": {"hold_out": metrics.binary_metrics(y_val, val, threshold)},
        "licence": licence,
    }  # fmt: skip
    if "test" in data:
        meta["test_split"] = test_split_name(cfg)
        meta["metrics"].update(scored(model, data["test"], threshold, device, n_boot, "test"))
    for site, where in (sites or {}).items():
        part = decode(list_folder(where), cfg.data.image_size, where=f" in {where}")
        meta.setdefault("sites", {})[site] = {
            "folder": str(where),
            **scored(model, part, threshold, device, n_boot, ""),
        }
    return export(model.cpu(), cfg, meta, folder, name)


def test_split_name(cfg) -> str:
    """Where the test metrics come from, e.g. "P-ADSD validation/"; only a run with one."""
    return f"{Path(cfg.data.root).name} {cfg.data.test_split}/"


def scored(model, part, threshold: float, device, n_boot: int, prefix: str) -> dict:
    """Metrics of `part` at `threshold`, with 95% percentile bootstrap intervals (stratified)."""
    probs = predict_proba(model, part.images, part.size, device)
    labels = part.labels.numpy()
    intervals = metrics.bootstrap(metrics.all_metrics(threshold), labels, probs, n_boot)
    key = f"{prefix}_intervals" if prefix else "intervals"
    return {prefix or "metrics": metrics.binary_metrics(labels, probs, threshold),
            key: {k: [v.low, v.high] for k, v in intervals.items()}}  # fmt: skip


ARCADE_LICENCE = (
    "weights MIT, like the code; trained on ARCADE (Popov et al., Scientific Data 11, 20, "
    "2024; Zenodo record 10390295): credit its authors, and check the dataset's licence "
    "before any use beyond research (MODEL_CARD.md); no ARCADE image ships with lqer"
)


def ship_detector(
    run: Path, name: str, folder: Path, detector: tuple, target_sensitivity: float = 0.90
) -> tuple[Path, Path]:
    """A whole-frame detector as weights NAME: the threshold that makes at most one false
    positive per frame on the hold-out that chose its epoch, and the one that reaches
    `target_sensitivity` there; the test split's metrics at the first, scored once."""
    model, cfg, state = detector
    sets = load_frame_sets(cfg.data, cfg.train.seed)  # the hold-out of training
    scored = {}
    for split, frames in sets.items():
        if split != "train":
            found = detect(model, frames.images, frames.scales, flip=cfg.model.flip)
            scored[split] = dict(zip(frames.ids, found, strict=True))
    curve = froc(scored["val"], sets["val"].truth)
    threshold = operating_threshold(curve, fp_rate=1.0)
    if threshold is None:
        raise LqerError(f"{run}: even its best candidates make more than 1 false positive per "
                        "frame on the hold-out; no threshold to ship")  # fmt: skip
    sensitive = operating_threshold(curve, sensitivity=target_sensitivity)
    hold_out = f"the hold-out of {cfg.data.train_split}/ ({len(sets['val'])} frames)"
    meta = {
        "kind": "detector",
        "summary": f"FCOS, {cfg.model.head} head, from {run.name}, epoch {state.get('epoch')}",
        "created": datetime.date.today().isoformat(),
        "training_data": {
            "root": Path(cfg.data.root).name, "split": cfg.data.train_split,
            "frames": len(sets["train"]), "hold_out": len(sets["val"]),
            "stenoses": sum(len(b) for b in sets["train"].boxes),
        },
        "threshold": {"value": threshold, "rule": f"<= 1 false positive per frame on {hold_out}"},
        "threshold_sensitivity": {
            "value": sensitive, "rule": f"sensitivity >= {target_sensitivity:.2f} on {hold_out}",
        },
        "metrics": {"hold_out": detection_summary(scored["val"], sets["val"].truth, threshold)},
        "licence": ARCADE_LICENCE,
    }  # fmt: skip
    if "test" in sets:
        meta["test_split"] = test_split_name(cfg)
        meta["metrics"]["test"] = detection_summary(scored["test"], sets["test"].truth, threshold)
    return export(model.cpu(), cfg, meta, folder, name)
