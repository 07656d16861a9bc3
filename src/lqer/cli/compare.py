"""`lqer compare` and `lqer report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lqer.cli import lists
from lqer.cli.options import ConfigOpt, SetOpt
from lqer.errors import LqerError
from lqer.guarded_yaml import shown
from lqer.models import MODELS


def compare_command(
    out: Annotated[
        Path, typer.Option("--out", help="Comparison folder; finished runs in it are reused.")
    ],
    config: ConfigOpt = None,
    models: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated, of {', '.join(MODELS)} (default: every one)."),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated training seeds.")] = "0,1,2,3,4",
    folds: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated folds, e.g. 0,1,2,3,4: one comparison per fold k, "
            "in OUT/fold<k> with data.fold=k."
        ),
    ] = None,
    target_sensitivity: Annotated[
        float, typer.Option(help="Choose the threshold on validation to reach this sensitivity.")
    ] = 0.90,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples of the test split.")] = 2000,
    set_: SetOpt = None,
) -> None:
    """Train models x seeds with one recipe and compare them.

    Scored on the test split.

    Finished runs in OUT are reused from their files (no checkpoint needed) and stopped ones
    resumed; the tables hold every finished run in OUT with this configuration, not only those
    named now, so pieces run on different days merge into one comparison.
    """
    from lqer.config import load_config
    from lqer.experiments.compare import compare, compare_folds, failures
    from lqer.experiments.variants import DEFAULT_MODELS

    names = DEFAULT_MODELS if models is None else lists.items(models)
    if not all(names):
        raise LqerError(f"--models: expected comma-separated model names, got {shown(models)}")
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise LqerError(f"--models: unknown model {shown(unknown[0])} (known: {', '.join(MODELS)})")
    base = load_config(config, set_ or [])
    options = dict(
        models=names, seeds=lists.numbers(seeds, "--seeds"), target_sensitivity=target_sensitivity,
        n_boot=n_boot,
    )  # fmt: skip
    if folds is None:
        folders = [compare(base, out, **options)]
    else:
        folders = compare_folds(base, out, lists.numbers(folds, "--folds"), **options)
    for folder in folders:
        typer.echo(f"results in {folder / 'results.md'}")
    failed = [(folder, r) for folder in folders for r in failures(folder)]
    for folder, r in failed:
        typer.echo(f"error: {r['model']} seed {r['seed']} failed: {r['error']} "
                   f"({folder / r['run'] / 'error.txt'})", err=True)  # fmt: skip
    if failed:
        typer.echo(f"error: {len(failed)} run(s) failed; the same command retries them", err=True)
        raise typer.Exit(1)


def report_command(
    target: Annotated[
        Path, typer.Argument(metavar="DIR", help="A run folder or a comparison folder.")
    ],
) -> None:
    """Write an HTML report, and its Markdown twin.

    Self-contained, into TARGET/report/."""
    from lqer.experiments.report import write_report

    html, markdown = write_report(target)
    typer.echo(f"wrote {html} and {markdown}")


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
    app.command("report")(report_command)
