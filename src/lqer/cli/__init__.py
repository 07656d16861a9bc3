"""The `lqer` command line: a thin layer over the library. Each group lives in its own module."""

from __future__ import annotations

import os
import sys
import warnings

import typer

from lqer.errors import LqerError, LqerWarning

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Hybrid quantum-classical stenosis classification for coronary angiography.",
)


def _register() -> None:
    from lqer.cli import apply, compare, data, models, quantum, run

    run.register(app)
    apply.register(app)
    models.register(app)
    quantum.register(app)
    compare.register(app)
    app.add_typer(data.app, name="data", help="Build, split, audit and augment patch datasets.")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, LqerWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main() -> None:
    """Usage errors are typer's own (exit 2); LqerError and OS errors are one line (exit 2)."""
    _register()
    warnings.showwarning = _show_warning
    try:
        app()  # standalone: typer prints usage errors and exits 2 itself
    except LqerError as e:
        _fail(str(e), 2)
    except OSError as e:  # a full disk, a permission, a vanished file: name it, no traceback
        where = f": {e.filename}" if e.filename else ""
        _fail(f"{e.strerror or e}{where}", 2)
    except Exception as e:
        if os.environ.get("LQER_DEBUG"):
            raise
        _fail(f"unexpected {type(e).__name__}: {e} (set LQER_DEBUG=1 for the traceback)", 1)


def _fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
