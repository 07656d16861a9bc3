"""`lqer models` and `lqer ship`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def models() -> None:
    """List the models lqer trains and the weights it ships."""
    from lqer.models import MODELS
    from lqer.models.weights import describe

    typer.echo("models (model.name=NAME):")
    for entry in MODELS.values():
        typer.echo(f"  {entry.name:<18} {entry.summary}")
    typer.echo("\n" + describe())


def ship(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A finished run folder with best.pt.")],
    name: Annotated[str, typer.Option(help="Name of the weights, e.g. lqer-padsd.")],
    out: Annotated[Path, typer.Option(help="Folder for NAME.safetensors and NAME.json.")],
    target_sensitivity: Annotated[
        float, typer.Option(help="The stored threshold reaches this sensitivity on the hold-out.")
    ] = 0.90,
    site: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME=DIR", help="Also score a labelled folder (repeatable)."),
    ] = None,
    licence: Annotated[
        str | None, typer.Option(help="The weights' licence line [default: P-ADSD's].")
    ] = None,
    flip: Annotated[
        bool,
        typer.Option(help="Detectors: scan frames with the test-time flip, thresholds too."),
    ] = False,
) -> None:
    """Package a run as shipped weights.

    fp16 safetensors with the run's thresholds, metrics and metadata; each --site's metrics
    with 95% bootstrap intervals."""
    from lqer.cli.lists import pair
    from lqer.experiments.ship import LICENCE
    from lqer.experiments.ship import ship as ship_run

    found = (pair(text, "--site", "NAME=DIR") for text in site or [])
    sites = {key: Path(folder) for key, folder in found}
    weights, info = ship_run(run, name, out, target_sensitivity, sites=sites,
                             licence=licence or LICENCE, flip=flip)  # fmt: skip
    typer.echo(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) and {info}")


def register(app: typer.Typer) -> None:
    app.command()(models)
    app.command()(ship)
