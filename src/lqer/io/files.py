"""Writing files safely: each appears complete or not at all, under the user's umask, and the
temporaries of a killed write are recognised by their names (rule 5 of `lqer.io`)."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from lqer.errors import LqerError, LqerWarning

TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # what tempfile names, as used below


def umask() -> int:
    current = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds.

    The file gets the mode of the file it replaces, or that of a new file under the umask
    (mkstemp alone would leave it private to the user).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~umask()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, above all: name the file that could not be written
        raise LqerError(f"could not write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_csv(
    path: str | os.PathLike, rows: list[dict], columns: Sequence[str] | None = None
) -> None:
    """The one CSV writer: a header (`columns`, else the first row's keys) and the rows,
    atomically. No rows and no columns give an empty file."""
    columns = list(columns or (rows[0] if rows else []))
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        if columns:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)


@contextlib.contextmanager
def work_folder(path: Path) -> Iterator[Path]:
    """A hidden temporary folder beside `path` (`.NAME.XXXXXXXX.tmp`), removed afterwards; for
    outputs made of many files that must appear together."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~umask())  # mkdtemp makes it private; the output should not be
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield a work folder beside `path` and rename it into place if the block succeeds; an
    existing `path` (which the caller has checked is lqer's) is renamed away and deleted."""
    with work_folder(path) as tmp:
        yield tmp
        if path.exists():
            old = tmp.with_suffix(".old")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
        else:
            os.rename(tmp, path)


def remove_stale_work(path: Path, foreign: Callable[[Path], str | None]) -> list[Path]:
    """Remove the work folders and files that killed commands left beside `path`, named as
    `work_folder` and `atomic_path` name them, unless `foreign` says why one may hold
    something lqer did not write (then it stays, with a warning).

    Callers hold the lock on the folder they write, so no live command's work is removed.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.(tmp|old)")
    removed = []
    if not path.parent.is_dir():
        return removed
    for entry in sorted(path.parent.iterdir()):
        if not pattern.fullmatch(entry.name):
            continue
        why = "it is a link" if entry.is_symlink() else foreign(entry)
        if why:
            message = f"left {entry} alone: named like lqer's work, but {why}"
        else:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed.append(entry)
            message = f"removed {entry}, left behind by an interrupted lqer command"
        warnings.warn(message, LqerWarning, stacklevel=3)
    return removed


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the `.NAME.XXXXXXXX.tmp` files that killed atomic writes left in a folder that
    lqer owns and holds the lock on."""
    removed = []
    for stale in folder.iterdir():
        if TEMPORARY.fullmatch(stale.name) and stale.is_file() and not stale.is_symlink():
            stale.unlink()
            removed.append(stale)
    return removed


# ----------------------------------------------------------------------------- can it be written


def check_output_folder(path: str | os.PathLike, option: str) -> Path:
    """Fail early if `path` cannot be, or become, a folder lqer can write into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LqerError(f"{option}: {path} is a file, not a folder")
    probe_writable(existing_folder_above(path, option), option)
    return path


def existing_folder_above(path: Path, option: str) -> Path:
    """The nearest folder at or above `path` that exists; a file on the way is an error."""
    for candidate in (path.absolute(), *path.absolute().parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise LqerError(f"{option}: {candidate} is a file, so nothing can go below it")
            return candidate
    raise LqerError(f"{option}: no folder of {path} exists")  # unreachable: / exists


def probe_writable(folder: Path, option: str) -> None:
    """Create and remove a file: unlike os.access, this also holds for root and read-only mounts."""
    try:
        fd, name = tempfile.mkstemp(prefix=".lqer-probe.", dir=folder)
    except OSError as e:
        raise LqerError(f"{option}: cannot write to {folder} ({e.strerror})") from None
    os.close(fd)
    os.unlink(name)
