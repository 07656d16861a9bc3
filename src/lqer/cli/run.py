"""`lqer train`, `evaluate`, `predict` and `demo`."""

import typer


def register(app: typer.Typer) -> None:
    pass
