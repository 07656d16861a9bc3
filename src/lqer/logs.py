"""lqer's progress lines go through `logging`, on the "lqer" logger: one line per message to the
current standard output at INFO, as a command prints them. A notebook or a program quiets them
with `logging.getLogger("lqer").setLevel(logging.WARNING)`, or sends them elsewhere by adding
its own handlers (this one then steps aside: propagate is off while it is attached).

Long steps also show a tqdm bar on standard error (`progress`), quieted the same way.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator


class _CurrentStdout(logging.StreamHandler):
    """Writes to whatever sys.stdout is when a record comes (a notebook's, pytest's capture)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler assigns it; the current one is used
        pass


def _setup() -> None:
    root = logging.getLogger("lqer")
    if not any(isinstance(h, _CurrentStdout) for h in root.handlers):
        handler = _CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False


_setup()
logger = logging.getLogger("lqer")


def progress(items: Iterable, desc: str, total: int | None = None) -> Iterator:
    """`items` with a bar that appears only once a step has run for two seconds, so quick
    calls (and tests) stay quiet; off while the "lqer" logger is quieted below INFO."""
    from tqdm.auto import tqdm

    quiet = not logger.isEnabledFor(logging.INFO)
    return iter(tqdm(items, desc=desc, total=total, delay=2, leave=False, disable=quiet))
