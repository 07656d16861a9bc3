"""The user's verbs, for a notebook or a script: `import lqer`, then `lqer.predict(...)`.

Each verb is a thin layer over the library, as the command line is: the same checks, the same
files. A model is named as on the command line: shipped weights ("lqer-padsd", see
`lqer models`), a checkpoint (best.pt) or, where said, an ONNX export. Errors are `LqerError`s;
progress is reported through `logging` and tqdm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lqer.config import ExperimentConfig, load_config
from lqer.models import FRAME_MODEL, PATCH_MODEL


@dataclass
class Loaded:
    """A model ready to score: the torch module (eval mode, CPU) or an ONNX Runtime session,
    what it is, its configuration, its decision threshold and the rest of what was stored."""

    model: Any
    kind: str  # "classifier", "detector" or "onnx"
    config: Any  # ExperimentConfig or DetectionConfig; None for ONNX
    threshold: float
    info: dict


def load(source: str | Path) -> Loaded:
    """Shipped weights, a checkpoint or a detector checkpoint; an ONNX file by its suffix."""
    from lqer.eval.evaluate import decision

    if Path(source).suffix == ".onnx":
        from lqer.eval.export import OnnxModel, onnx_decision

        session = OnnxModel(source)
        return Loaded(session, "onnx", None, onnx_decision(session, None).threshold, {})
    from lqer.models.detector import load_detector

    found = load_detector(source)
    if found is not None:
        model, cfg, info = found
        return Loaded(model, "detector", cfg, decision(source, info, None).threshold, info)
    from lqer.models.checkpoint import load_checkpoint

    model, cfg, info = load_checkpoint(source)
    return Loaded(model, "classifier", cfg, decision(source, info, None).threshold, info)


def fit(
    config: ExperimentConfig | str | Path,
    overrides: Sequence[str] = (),
    resume: bool = False,
) -> Path:
    """Train a model as `config` (an `ExperimentConfig` or a YAML file) describes, with
    `section.key=value` overrides; returns the run folder with best.pt and its history."""
    from lqer.train import fit as fit_run

    if not isinstance(config, ExperimentConfig):
        config = load_config(config, list(overrides))
    elif overrides:
        from lqer.sections import apply_overrides

        config = apply_overrides(config, list(overrides))
    return fit_run(config, resume=resume)


def finetune(
    data: str | Path,
    out: str | Path,
    model: str | Path = PATCH_MODEL,
    overrides: Sequence[str] = (),
) -> Path:
    """Adapt `model` to a new site: a run from its weights on the labelled patches under
    `data` (`train/`, and `validation/` as test), with the schedule of
    `lqer.train.finetune.SCHEDULE` and the threshold chosen again on a hold-out of the new
    `train/`; returns the run folder."""
    from lqer.train import fit as fit_run
    from lqer.train.finetune import finetune_config

    return fit_run(finetune_config(model, data, out, overrides))


def evaluate(
    data: str | Path,
    model: str | Path = PATCH_MODEL,
    threshold: float | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    tta: bool = False,
) -> dict:
    """AUC, accuracy, sensitivity and the rest on a folder with positive/ and negative/, at the
    model's stored threshold unless one is given; also written as JSON to `out`. `tta`: average
    each patch with its mirror."""
    from lqer.eval.evaluate import evaluate_checkpoint

    return evaluate_checkpoint(model, data, out, device, threshold=threshold, tta=tta)


def predict(
    paths: Sequence[str | Path],
    model: str | Path = PATCH_MODEL,
    threshold: float | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    tta: bool = False,
) -> list[dict]:
    """A row per image (files, folders, DICOM frames): probability and decision, and the true
    label where a file sits under positive/ or negative/; written as CSV to `out` if given.
    `tta`: average each patch with its mirror."""
    from dataclasses import asdict

    from lqer.eval.evaluate import predict_rows
    from lqer.eval.predictions import write_predictions
    from lqer.io import check_output_file

    if out is not None:
        check_output_file(out, "`out`", [model, *paths])
    rows, _, _ = predict_rows(model, list(paths), device, False, threshold, tta)
    if out is not None:
        write_predictions(out, rows, loose=True)
    return [asdict(row) for row in rows]


def scan(
    paths: Sequence[str | Path],
    out: str | Path,
    model: str | Path = FRAME_MODEL,
    annotations: str | Path | None = None,
    annotation_format: str = "voc",
    threshold: float | None = None,
    dense: bool = False,
    device: str = "auto",
    flip: bool | None = None,
) -> dict:
    """Find stenoses in whole frames with a patch classifier's windows or a detector
    (`lqer-arcade`); writes heatmaps, overlays and boxes to `out`, and with `annotations`
    every metric (FROC, AP, ARCADE's score). `flip`: a detector's test-time flip on or off
    (None: as shipped). Returns summary.json's content."""
    from lqer.eval.scan import ScanConfig
    from lqer.eval.scan_files import scan_files

    cfg = ScanConfig(dense=dense, flip=flip)
    return scan_files(model, list(paths), out, cfg, None, annotations,
                      annotation_format, threshold, device, progress=True)  # fmt: skip


def explain(
    paths: Sequence[str | Path],
    out: str | Path,
    model: str | Path = PATCH_MODEL,
    methods: Sequence[str] = ("gradcam",),
    device: str = "auto",
) -> list[dict]:
    """Grad-CAM (and the other methods of `lqer.eval.explain.METHODS`) overlays in `out`."""
    from lqer.eval.explain import explain_files

    return explain_files(model, list(paths), out, tuple(methods), device=device)


def export(model: str | Path, out: str | Path, data: str | Path | None = None) -> dict:
    """The model as ONNX at `out`, written only if ONNX Runtime reproduces PyTorch's scores
    on `data` (or the bundled sample)."""
    from lqer.eval.export import export_onnx

    return export_onnx(model, out, data)


def compare(
    config: ExperimentConfig | str | Path,
    out: str | Path,
    models: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
) -> Path:
    """Train (or reuse) each model x seed on the same data and write the paired tables;
    `lqer report` turns the folder into a report. Returns the comparison folder."""
    from lqer.experiments.compare import compare as run_compare
    from lqer.experiments.variants import DEFAULT_MODELS

    if not isinstance(config, ExperimentConfig):
        config = load_config(config)
    return run_compare(config, out, models or DEFAULT_MODELS, seeds)


def noise_sweep(
    model: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    channels: Sequence[str] = ("depolarizing",),
    strengths: Sequence[float] = (0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    shots: Sequence[int | None] = (None, 1000, 100),
    threshold: float | None = None,
    seed: int = 0,
    device: str = "auto",
) -> list[dict]:
    """Score a trained LQER model as a noisy device would run its circuit: a row per channel,
    strength and shot count (None: exact); table and plot in `out` if given."""
    from lqer.experiments.noise_sweep import sweep_folder

    return sweep_folder(model, data, out, channels, strengths, shots, threshold, seed, device)
