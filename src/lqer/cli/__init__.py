"""The `lqer` command line: a thin layer over the library. Each group lives in its own module."""

from __future__ import annotations

import sys

import typer

from lqer.errors import LqerError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Hybrid quantum-classical stenosis classification for coronary angiography.",
)


def _register() -> None:
    from lqer.cli import compare, data, quantum, run

    run.register(app)
    quantum.register(app)
    compare.register(app)
    app.add_typer(data.app, name="data", help="Build, split, audit and augment patch datasets.")


def main() -> None:
    _register()
    try:
        app(standalone_mode=False)
    except LqerError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors and the like
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        raise
