"""Safe output: files appear complete or not at all, with the modes the user's umask asks for,
and nothing lqer did not write is overwritten or deleted."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from lqer.errors import LqerError


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


def remove_stale_temporaries(folder: Path, names: Iterable[str]) -> list[Path]:
    """Delete the `.NAME.*.tmp` files that a killed atomic write of NAME left in `folder`.

    Assumes one writer per folder, which lqer's run folders guarantee by refusing a second run.
    """
    removed = []
    for name in names:
        for stale in folder.glob(f".{name}.*.tmp"):
            if stale.is_file():
                stale.unlink()
                removed.append(stale)
    return removed


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Fail early, before any work, if `path` cannot become a file."""
    path = Path(path)
    if path.is_dir():
        raise LqerError(f"{option}: {path} is a folder; name a file")
    _probe(_existing_ancestor(path.parent, option), option)
    return path


def check_output_folder(path: str | os.PathLike, option: str) -> Path:
    """Fail early if `path` cannot be, or become, a folder lqer can write into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LqerError(f"{option}: {path} is a file, not a folder")
    _probe(_existing_ancestor(path, option), option)
    return path


def _existing_ancestor(path: Path, option: str) -> Path:
    """The nearest folder at or above `path` that exists; a file on the way is an error."""
    for candidate in (path.absolute(), *path.absolute().parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise LqerError(f"{option}: {candidate} is a file, so nothing can go below it")
            return candidate
    raise LqerError(f"{option}: no folder of {path} exists")  # unreachable: / exists


def _probe(folder: Path, option: str) -> None:
    """Create and remove a file: unlike os.access, this also holds for root and read-only mounts."""
    try:
        fd, name = tempfile.mkstemp(prefix=".lqer-probe.", dir=folder)
    except OSError as e:
        raise LqerError(f"{option}: cannot write to {folder} ({e.strerror})") from None
    os.close(fd)
    os.unlink(name)


def check_own_folder(path: str | os.PathLike, marker: str, command: str) -> Path:
    """Fail early unless `path` is new, empty, or marked by `marker` as written by `command`."""
    path = check_output_folder(path, "--out")
    if path.exists() and any(path.iterdir()) and not (path / marker).exists():
        raise LqerError(f"--out: {path} holds files that {command} did not write; name another")
    return path


def claim_folder(path: Path, marker: str) -> Path:
    """Create the folder and mark it, so that the same command may write into it again."""
    path.mkdir(parents=True, exist_ok=True)
    (path / marker).touch()
    return path
