"""`lqer train`, `evaluate`, `predict` and `demo`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from lqer.cli.options import (
    SKIP_BAD,
    CheckpointOpt,
    ConfigOpt,
    DeviceOpt,
    OnnxOpt,
    OrCheckpointOpt,
    SetOpt,
    SkipBadOpt,
    ThresholdOpt,
    TtaOpt,
    model_or_onnx,
    named_overrides,
)
from lqer.errors import LqerError
from lqer.models import MODELS, PATCH_MODEL


def train(
    config: ConfigOpt = None,
    data: Annotated[Path | None, typer.Option(help="Dataset root (data.root).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (out_dir).")] = None,
    model: Annotated[
        str | None, typer.Option(help=f"One of {', '.join(MODELS)} (model.name).")
    ] = None,
    weights: Annotated[str | None, typer.Option(help="imagenet, none or PATH.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training set.")] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Side in px the patches are resized to (data.image_size).")
    ] = None,
    quantum_backend: Annotated[
        str | None, typer.Option(help="native or pennylane[:DEVICE].")
    ] = None,
    quantum_grad: Annotated[str | None, typer.Option(help="backprop or parameter-shift.")] = None,
    shots: Annotated[int | None, typer.Option(help="Sampled measurements per expectation.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the weights, batches and augmentation.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    devices: Annotated[
        int | None, typer.Option(help="Train with DDP in N local processes (train.devices).")
    ] = None,
    skip_bad: Annotated[bool | None, typer.Option("--skip-bad", help=SKIP_BAD)] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from last.pt.")
    ] = False,
    set_: SetOpt = None,
):
    """Train a model into a run folder.

    Writes config.yaml, history.csv/jsonl, best.pt, last.pt and the test metrics.

    With --resume and no --config, the run's own settings are the starting point."""
    overrides = named_overrides(
        set_,
        **{
            "data.root": data, "out_dir": out, "model.name": model, "model.weights": weights,
            "train.epochs": epochs, "data.image_size": image_size,
            "model.quantum.backend": quantum_backend, "model.quantum.grad": quantum_grad,
            "model.quantum.shots": shots, "train.seed": seed, "train.device": device,
            "train.devices": devices, "data.skip_bad": skip_bad,
        },
    )  # fmt: skip
    if resume and config is None:
        if out is None:
            raise LqerError("--resume needs --out (the run folder) or --config")
        from lqer.train.run_folder import resumed_config

        cfg = resumed_config(out, overrides)
    else:
        from lqer.config import load_config  # pydantic: not for --help

        cfg = load_config(config, overrides)
        if not cfg.data.root and cfg.data.split_file is None:
            raise LqerError(
                "no data: give a configuration (e.g. -c configs/padsd-cpu.yaml) or --data "
                "FOLDER, a folder with train/ and validation/, each with positive/ and negative/"
            )
    from lqer.train import fit  # after the configuration: a bad option fails in well under 1 s

    run = fit(cfg, resume=resume)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for all
        _print_test_metrics(run)


def finetune(
    data: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="The new site's patches: train/ and validation/ (the test split), each with "
            "positive/ and negative/.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Run folder.")],
    checkpoint: CheckpointOpt = Path(PATCH_MODEL),
    epochs: Annotated[
        int | None, typer.Option(help="Passes over the training set [default: 10].")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the hold-out, batches and augmentation.")
    ] = None,
    set_: SetOpt = None,
):
    """Adapt a trained model to a new site from its labelled patches.

    Starts from the model's weights (10 epochs at the CPU recipe's rates), chooses the
    threshold again on a hold-out of the new train/, and scores validation/ once as test."""
    from lqer.train import fit
    from lqer.train.finetune import finetune_config

    overrides = named_overrides(set_, **{"train.epochs": epochs, "train.seed": seed})
    run = fit(finetune_config(checkpoint, data, out, overrides))
    if os.environ.get("RANK", "0") == "0":
        _print_test_metrics(run)


def _print_test_metrics(run: Path) -> None:
    import json

    from lqer.eval.metrics import format_table

    path = run / "test_metrics.json"
    if path.exists():
        metrics = json.loads(path.read_text())
        title = f"test metrics at threshold {metrics['threshold']:.4g} ({path})"
        typer.echo(format_table(metrics, title))
    typer.echo(f"run folder: {run}")


def evaluate(
    data: Annotated[Path, typer.Option(help="A folder with positive/ and negative/.")],
    checkpoint: CheckpointOpt = Path(PATCH_MODEL),
    out: Annotated[Path | None, typer.Option(help="JSON file for the metrics.")] = None,
    threshold: ThresholdOpt = None,
    device: DeviceOpt = "auto",
    skip_bad: SkipBadOpt = False,
    tta: TtaOpt = False,
):
    """Score a checkpoint on a labelled folder."""
    from lqer.eval.evaluate import default_eval_path, evaluate_checkpoint
    from lqer.eval.metrics import format_table

    out = out or default_eval_path(checkpoint, data)
    metrics = evaluate_checkpoint(checkpoint, data, out, device, skip_bad, threshold, tta)
    typer.echo(format_table(metrics, f"{checkpoint} on {data}"))
    typer.echo(f"threshold {metrics['threshold']:.4g} ({metrics['threshold_source']})")
    if metrics["skipped"]:
        typer.echo(f"skipped {metrics['skipped']} bad image(s)")
    typer.echo(f"metrics written to {out}")


def predict(
    paths: Annotated[list[Path], typer.Argument(metavar="IMAGES", help="Files or folders.")],
    checkpoint: OrCheckpointOpt = None,
    onnx: OnnxOpt = None,
    out: Annotated[Path, typer.Option(help="CSV file for the predictions.")] = Path(
        "predictions.csv"
    ),
    threshold: ThresholdOpt = None,
    device: DeviceOpt = "auto",
    skip_bad: SkipBadOpt = False,
    tta: TtaOpt = False,
    json_: Annotated[
        bool, typer.Option("--json", help="Print every row as JSON instead of the table.")
    ] = False,
):
    """Score images: a table of calls, and a CSV file."""
    checkpoint = model_or_onnx(checkpoint, onnx, PATCH_MODEL)
    if onnx is not None:
        from lqer.eval.export import predict_onnx_files

        if tta:
            raise LqerError("--tta works with --checkpoint; an ONNX export scores as it is")
        data, chosen = predict_onnx_files(onnx, paths, out, skip_bad, threshold)
    else:
        from lqer.eval.evaluate import predict_files

        data, chosen = predict_files(checkpoint, paths, out, device, skip_bad, threshold, tta)
    from lqer.eval.predictions import prediction_table, read_predictions

    rows = read_predictions(out)
    if json_:
        import dataclasses
        import json

        typer.echo(json.dumps([dataclasses.asdict(row) for row in rows], indent=1))
        return
    typer.echo(prediction_table(rows))
    skipped = f", skipped {data.skipped} bad image(s)" if data.skipped else ""
    typer.echo(f"wrote {len(data)} predictions to {out}{skipped}; {chosen}")
    if data.notes:
        path, note = next(iter(data.notes.items()))
        typer.echo(f"warning: the call may not apply to {len(data.notes)} image(s), e.g. {path}: "
                   f"{note} (the reason column of {out} says which)", err=True)  # fmt: skip


def demo(
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/demo"),
    epochs: Annotated[int | None, typer.Option(help="Passes over the sample [default: 12]")] = None,
    set_: SetOpt = None,
):
    """Train LQER on the bundled sample and score its test part.

    LQER from scratch on the bundled P-ADSD sample, scored on its held-aside part."""
    from lqer.config import load_config
    from lqer.io import check_apart
    from lqer.sample import SAMPLE_DIR, demo_config
    from lqer.train import fit

    cfg = load_config(None, [f"{k}={v}" for k, v in demo_config(out).items()] + list(set_ or []))
    if epochs is not None:
        cfg.train.epochs = epochs
    check_apart(out, "--out", {"the bundled sample": SAMPLE_DIR}, folder=True)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):  # never reuse a folder
        cfg.out_dir = str(out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}"))
        typer.echo(f"{out} is taken; this demo run goes to {cfg.out_dir}")
    run = fit(cfg)
    _print_test_metrics(run)


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(finetune)
    app.command()(evaluate)
    app.command()(predict)
    app.command()(demo)
