"""Options shared by several commands, so that each reads and is spelled the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lqer.errors import LqerError

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML experiment file.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a setting: section.key=value (repeatable), e.g. -s train.epochs=3.",
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
SKIP_BAD = "Skip unreadable images (listed in the output) instead of stopping."
SkipBadOpt = Annotated[bool, typer.Option("--skip-bad", help=SKIP_BAD)]


def named_overrides(overrides: list[str] | None, **options) -> list[str]:
    """The named command-line options that were given, then the `--set` overrides."""
    named = [f"{key}={value}" for key, value in options.items() if value is not None]
    return named + list(overrides or [])


CheckpointOpt = Annotated[
    Path, typer.Option(help="A best.pt or last.pt file, or shipped weights (lqer models).")
]
OrCheckpointOpt = Annotated[  # where --onnx may be given instead
    Path | None,
    typer.Option(
        help="A best.pt or last.pt file, or shipped weights (lqer models) [default: "
        "lqer-padsd, for scan lqer-arcade]."
    ),
]
OnnxOpt = Annotated[
    Path | None, typer.Option(help="A model from lqer export, run in ONNX Runtime.")
]


def model_or_onnx(checkpoint: Path | None, onnx: Path | None, default: str) -> Path | None:
    """The checkpoint to use: the one given, none where --onnx is given, else `default`."""
    if checkpoint is not None and onnx is not None:
        raise LqerError("give --checkpoint or --onnx, not both")
    return checkpoint if checkpoint is not None or onnx is not None else Path(default)


def threshold_callback(value: float | None) -> float | None:
    """Checked as the option is read, before any model is loaded: nan or 2 would be accepted
    and give every image the same call."""
    from lqer.threshold import checked_threshold

    return None if value is None else checked_threshold(value, "--threshold")


ThresholdOpt = Annotated[
    float | None,
    typer.Option(
        help="Decision threshold [default: the checkpoint's stored one, else 0.5].",
        callback=threshold_callback,
    ),
]

TtaOpt = Annotated[
    bool,
    typer.Option(
        "--tta",
        help="Test-time augmentation: average each patch's logits with its mirror's "
        "(twice the time; results/padsd_steps measures what it gives).",
    ),
]
