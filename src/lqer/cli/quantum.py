"""`lqer circuit` and `lqer noise-sweep`."""

import typer


def register(app: typer.Typer) -> None:
    pass
