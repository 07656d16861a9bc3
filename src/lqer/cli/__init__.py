"""The `lqer` command line: a thin layer over the library. Each group lives in its own module."""

from __future__ import annotations

import logging
import os
import sys
import warnings

import typer

from lqer.errors import LqerError, LqerWarning, as_flags

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: no <bool> or <str> beside each option
    help="Hybrid quantum-classical stenosis classification for coronary angiography.",
)


def _print_version(asked: bool) -> None:
    if asked:
        from lqer import __version__

        typer.echo(f"lqer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print lqer's version and exit.",
        is_eager=True,
        callback=_print_version,
    ),  # fmt: skip
) -> None:
    """Hybrid quantum-classical stenosis classification for coronary angiography."""


def _register() -> None:
    from lqer.cli import apply, compare, data, detector, models, quantum, run

    run.register(app)
    apply.register(app)
    models.register(app)
    quantum.register(app)
    compare.register(app)
    app.add_typer(data.app, name="data", help="Build, split, audit and augment patch datasets.")
    app.add_typer(detector.app, name="detector", help="Train whole-frame stenosis detectors.")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Every warning is one line: lqer's own as written, other libraries' (PIL's "Corrupt
    EXIF data", pydicom's UserWarnings) by their first line, without Python's source line."""
    if issubclass(category, LqerWarning):
        print(f"warning: {as_flags(str(message))}", file=sys.stderr)
        return
    lines = str(message).strip().splitlines() or [category.__name__]
    first = lines[0] if len(lines[0]) <= 200 else lines[0][:197] + "..."
    print(f"warning: {first}", file=sys.stderr)


def main() -> None:
    """Usage errors are typer's own (exit 2); LqerError and OS errors are one line (exit 2)."""
    _register()
    warnings.showwarning = _show_warning
    # pydicom logs what it also warns about (warn_and_log), some of it with a traceback: its
    # warnings are shown above, and its log records must not reach a handler of the root logger.
    pydicom_log = logging.getLogger("pydicom")
    pydicom_log.propagate = False
    pydicom_log.addHandler(logging.NullHandler())  # else Python's last-resort handler prints
    try:
        app()  # standalone: typer prints usage errors and exits 2 itself
    except LqerError as e:
        _fail(as_flags(str(e)), 2)
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
