"""`lqer circuit` and `lqer noise-sweep`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lqer.cli import lists
from lqer.cli.options import ConfigOpt, DeviceOpt, SetOpt, SkipBadOpt, ThresholdOpt
from lqer.errors import LqerError
from lqer.guarded_yaml import shown


def circuit(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    pennylane: Annotated[
        bool, typer.Option("--pennylane", help="Also print PennyLane's drawing (qml.draw).")
    ] = False,
    list_: Annotated[
        bool, typer.Option("--list", help="List the ansatzes and readouts to choose from.")
    ] = False,
):
    """Print the configured circuit, its parameters and depth."""
    from lqer.config import circuit_of, execution_of, load_config
    from lqer.quantum.draw import describe, list_ansatzes

    quantum = load_config(config, set_).model.quantum
    if list_:
        typer.echo(list_ansatzes(quantum.n_qubits, quantum.n_layers))
        return
    circuit = circuit_of(quantum)
    typer.echo(describe(circuit, execution_of(quantum)))
    if pennylane:
        from lqer.quantum.pennylane_circuit import pennylane_drawing

        typer.echo("\nPennyLane (all angles shown as 0):")
        typer.echo(pennylane_drawing(circuit, execution_of(quantum).noise))


def shot_counts(text: str) -> list[int | None]:
    """--shots: positive counts, or exact (none) for exact expectations."""
    counts = lists.numbers(text, "--shots", int, {"exact": None, "none": None})
    if any(c is not None and c < 1 for c in counts):
        raise LqerError(f"--shots: shot counts must be positive, got {shown(text)}")
    return counts


def noise_sweep(
    checkpoint: Annotated[Path, typer.Option(help="A best.pt or last.pt of an LQER model.")],
    data: Annotated[Path, typer.Option(help="A folder with positive/ and negative/.")],
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: CHECKPOINT's folder/noise_sweep]")
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME", help="depolarizing, amplitude_damping or readout_error (repeatable)."
        ),
    ] = None,
    strengths: Annotated[str, typer.Option(help="Comma-separated strengths in [0, 1].")] = (
        "0,0.01,0.02,0.05,0.1,0.2,0.5"
    ),
    shots: Annotated[str, typer.Option(help="Comma-separated shot counts; 'exact' for none.")] = (
        "exact,1000,100"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the shot sampler.")] = 0,
    threshold: ThresholdOpt = None,
    device: DeviceOpt = "auto",
    skip_bad: SkipBadOpt = False,
):
    """Score a model under circuit noise and finite shots.

    A range of noise strengths and shot counts: a table and a plot."""
    from lqer.experiments import noise_sweep as sweep

    out = out or checkpoint.parent / "noise_sweep"
    rows = sweep.sweep_folder(
        checkpoint, data, out, channel or ["depolarizing"],
        lists.numbers(strengths, "--strengths", float), shot_counts(shots),
        threshold, seed, device, skip_bad,
    )  # fmt: skip
    typer.echo(sweep.markdown_table(rows, f"{checkpoint} on {data}"))
    typer.echo(f"wrote noise_sweep.csv, .md, .png and .svg in {out}")


def register(app: typer.Typer) -> None:
    app.command()(circuit)
    app.command("noise-sweep")(noise_sweep)
