"""Safe output: the rules every lqer command follows when it writes, in one place.

1. An output is never one of the command's inputs, never holds one, never lies inside one,
   and never lies inside a class folder (`positive/`, `negative/`), which every reader walks.
2. A folder output belongs to one command (`KINDS`): it is new, empty, or marked `.lqer-KIND`
   by that command, which may then write there again. Readers skip marked folders, so no
   output is read back as data.
3. A file output replaces an existing file only if lqer wrote it there and nobody changed it
   since: the folder's `.lqer-files` lists each such file with its hash.
4. A command holds an exclusive lock on the folder it writes (`locked`), so two commands never
   mix their files in one folder or delete each other's temporaries.
5. Files appear complete or not at all: each is written to a temporary beside it and renamed
   into place, and the temporaries a killed command left are removed when lqer next claims
   the folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from lqer.errors import LqerError, LqerWarning

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one command per folder is then on the user
    fcntl = None

log = logging.getLogger(__name__)

KINDS = ("run", "compare", "scan", "explain", "report", "noise-sweep", "patches")
REGISTRY = ".lqer-files"
CLASS_FOLDERS = ("negative", "positive")  # as lqer.data.layout.CLASSES; io imports no data code
TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # what tempfile names, as used below
Inputs = Iterable[str | os.PathLike] | Mapping[str, str | os.PathLike]  # paths, or what -> path


def umask() -> int:
    current = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(current)
    return current


# ----------------------------------------------------------------------------- atomic writes


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


# ----------------------------------------------------------------------------- checks


def check_output_file(path: str | os.PathLike, option: str, inputs: Inputs = ()) -> Path:
    """Fail early, before any work, if `path` cannot become this command's output file."""
    path = Path(path)
    if path.is_dir():
        raise LqerError(f"{option}: {path} is a folder; name a file")
    _probe(_existing_ancestor(path.parent, option), option)
    check_apart(path, option, inputs)
    if _exists(path) and not written_by_lqer(path):
        raise LqerError(
            f"{option}: {path} exists and lqer did not write it (or it changed since); "
            "choose another name or move it away"
        )
    return path


def check_output_folder(path: str | os.PathLike, option: str) -> Path:
    """Fail early if `path` cannot be, or become, a folder lqer can write into."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LqerError(f"{option}: {path} is a file, not a folder")
    _probe(_existing_ancestor(path, option), option)
    return path


def check_apart(out: Path, option: str, inputs: Inputs, folder: bool = False) -> None:
    """Rule 1: `out` is not an input, does not lie inside one nor, for a `folder` output,
    hold one, and lies in no class folder. `inputs` may name what each path is."""
    named = inputs.items() if isinstance(inputs, Mapping) else (("the input", p) for p in inputs)
    target = out.resolve()
    for what, given in named:
        if not given or not _exists(Path(given)):
            continue  # e.g. the name of shipped weights: no file to protect
        source = Path(given).resolve()
        where = f"{what} {given}" if what.startswith("the") else f"{what} ({given})"
        if target == source:
            raise LqerError(f"{option}: {out} is {where}; write elsewhere")
        if source in target.parents:
            raise LqerError(f"{option}: {out} lies inside {where}; write elsewhere")
        if folder and target in source.parents:
            raise LqerError(f"{option}: {out} holds {where}; write elsewhere")
    data = class_folder_above(target)
    if data is not None:
        raise LqerError(f"{option}: {out} lies inside {data}, a class folder lqer reads as data")


def class_folder_above(path: Path) -> Path | None:
    """The class folder (`positive/` beside `negative/`, or the reverse) at or above `path`."""
    for folder in (path, *path.parents):
        if folder.name in CLASS_FOLDERS:
            other = CLASS_FOLDERS[1 - CLASS_FOLDERS.index(folder.name)]
            if (folder.parent / other).is_dir():
                return folder
    return None


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


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


# ----------------------------------------------------------------------------- folders


def marker(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of output folder: {kind!r}")
    return f".lqer-{kind}"


def owner(folder: Path) -> str | None:
    """The command that marked `folder` as its output, if any."""
    return next((kind for kind in KINDS if (folder / marker(kind)).is_file()), None)


def check_own_folder(
    path: str | os.PathLike,
    kind: str,
    option: str = "--out",
    inputs: Inputs = (),
    legacy: Callable[[Path], bool] | None = None,
) -> Path:
    """Fail early unless `path` can be `kind`'s output folder (rules 1 and 2): new, empty, or
    marked by `kind`; `legacy` recognises a folder an older lqer wrote before markers."""
    path = check_output_folder(path, option)
    check_apart(path, option, inputs, folder=True)
    if not path.is_dir() or not any(path.iterdir()):
        return path
    found = owner(path)
    if found == kind or (found is None and legacy is not None and legacy(path)):
        return path
    what = f"the output of lqer's {found}" if found else "files that lqer did not write"
    raise LqerError(f"{option}: {path} holds {what}; choose another folder")


@contextlib.contextmanager
def owned_folder(path: Path, kind: str, option: str = "--out") -> Iterator[Path]:
    """`locked` and `claim_folder` together: the folder is `kind`'s for the block."""
    with locked(path, option):
        yield claim_folder(path, kind)


def claim_folder(path: Path, kind: str) -> Path:
    """Create and mark `path` as `kind`'s, removing the temporaries a killed run left; call
    it holding the folder's lock, once the inputs are known to be good."""
    path.mkdir(parents=True, exist_ok=True)
    removed = remove_stale_temporaries(path)
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted write in %s", len(removed),
                 path)  # fmt: skip
    if owner(path) != kind:
        write_text(path / marker(kind), json.dumps({"written_by": f"lqer {kind}"}) + "\n")
    return path


# ----------------------------------------------------------------------------- loose files


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _registry(folder: Path) -> dict[str, str]:
    try:
        entries = json.loads((folder / REGISTRY).read_text())
    except (OSError, ValueError):
        return {}  # none, or unreadable: then nothing here counts as lqer's, the safe side
    return entries if isinstance(entries, dict) else {}


def written_by_lqer(path: Path) -> bool:
    """Whether `path` is a file that lqer wrote (`output_file`) and nobody has changed since."""
    if path.is_symlink() or not path.is_file():
        return False
    return _registry(path.parent).get(path.name) == _digest(path)


@contextlib.contextmanager
def output_file(path: str | os.PathLike) -> Iterator[Path]:
    """`atomic_path` for a file in a folder lqer does not own (rule 3): it replaces only a
    file lqer wrote, and records what it wrote so that lqer may replace it later."""
    path = Path(path)
    if _exists(path) and not written_by_lqer(path):
        raise LqerError(f"{path} exists and lqer did not write it (or it changed since)")
    with atomic_path(path) as tmp:
        yield tmp
    record([path])


def record(paths: list[Path]) -> None:
    """List files lqer has just written in their folders' `.lqer-files`, with their hashes."""
    by_folder: dict[Path, list[Path]] = {}
    for path in paths:
        by_folder.setdefault(path.parent, []).append(path)
    for folder, written in by_folder.items():
        entries = _registry(folder)  # two writers at once may lose an entry: the file then
        entries.update((p.name, _digest(p)) for p in written)  # counts as foreign, no loss
        write_text(folder / REGISTRY, json.dumps(entries, indent=0, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------- locks

_held: dict[str, list[int]] = {}  # real path -> [descriptor, depth]: reentrant per process
_held_guard = threading.Lock()


@contextlib.contextmanager
def locked(folder: str | os.PathLike, option: str = "--out", wait: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (made if missing) for the block (rule 4).

    Another lqer command holding it makes this one fail at once, or with `wait` wait for it.
    A folder this call made and left empty is removed again. The lock is the kernel's (flock
    on the folder itself), so a killed command never leaves a stale lock behind.
    """
    folder = check_output_folder(folder, option)
    made = not folder.exists()
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
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


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


# ----------------------------------------------------------------------------- reading


def files_under(folder: Path) -> list[Path]:
    """Every file below `folder`, sorted, as torchvision's ImageFolder finds them: symbolic
    links followed (each real folder once, so a loop ends), hidden files and folders left
    out, and so are the folders that lqer commands marked as their output (rule 2)."""
    found, seen = [], set()
    for parent, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(parent)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".") and owner(Path(parent, d)) is None]
        found += [Path(parent, name) for name in files if not name.startswith(".")]
    return sorted(found)
