"""`lqer detector train`: a whole-frame stenosis detector (`lqer.detection`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lqer.cli.options import ConfigOpt, SetOpt, named_overrides

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@app.command("train")
def train(
    config: ConfigOpt = None,
    data: Annotated[Path | None, typer.Option(help="Frames root (data.root).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (out_dir).")] = None,
    head: Annotated[
        str | None, typer.Option(help="none, lqer (the circuit) or classical (its twin).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training frames.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of weights, order and hold-out.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from last.pt.")
    ] = False,
    set_: SetOpt = None,
):
    """Train FCOS on a ResNet18 pyramid, its box classifier reading the circuit's q (or not);
    writes config.yaml, history.csv/jsonl, best.pt, last.pt and test_metrics.json."""
    from lqer.detection_config import load_detection_config

    overrides = named_overrides(
        set_, **{"data.root": data, "out_dir": out, "model.head": head, "train.epochs": epochs,
                 "train.seed": seed},
    )  # fmt: skip
    cfg = load_detection_config(config, overrides)
    from lqer.train.detector import fit_detector  # after the configuration: errors come first

    run = fit_detector(cfg, resume=resume)
    typer.echo(f"run folder: {run}")
