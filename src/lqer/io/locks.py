"""Folder locks (rule 4 of `lqer.io`): one lqer command writes a folder at a time."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from lqer.errors import LqerError
from lqer.io.files import check_output_folder

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one command per folder is then on the user
    fcntl = None

log = logging.getLogger(__name__)

_held: dict[str, list[int]] = {}  # real path -> [descriptor, depth]: reentrant per process
_held_guard = threading.Lock()


@contextlib.contextmanager
def locked(folder: str | os.PathLike, option: str = "`out`", wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (made if missing) for the block (rule 4).

    Another lqer command holding it makes this one fail at once, or with `wait` wait for it.
    Folders this call made (parents too) and left empty are removed again. The lock is the
    kernel's (flock on the folder itself), so a killed command never leaves a stale lock behind.
    """
    folder = check_output_folder(folder, option)
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    with _held_guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            _acquire(fd, folder, option, wait)
        except BaseException:
            os.close(fd)
            raise
        with _held_guard:
            entry = _held[key] = [fd, 1]
    try:
        yield folder
    finally:
        with _held_guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                os.close(entry[0])  # closing the descriptor releases the lock
        for path in made:
            if not path.is_dir() or any(path.iterdir()):
                break
            path.rmdir()


def _acquire(fd: int, folder: Path, option: str, wait: bool) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        if not wait:
            raise LqerError(
                f"{option}: {folder} is in use by another lqer command; wait for it to finish "
                "or choose another folder"
            ) from None
    log.warning("waiting for another lqer command to finish with %s", folder)
    fcntl.flock(fd, fcntl.LOCK_EX)
