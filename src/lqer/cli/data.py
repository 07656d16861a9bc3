"""`lqer data ...`: dataset tooling."""

import typer

app = typer.Typer(no_args_is_help=True)
