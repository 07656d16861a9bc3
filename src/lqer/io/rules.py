"""Whose an output is (rules 1 to 3 of `lqer.io`): never an input, a folder marked by the
command it belongs to, a loose file replaced only if lqer wrote it; and readers that skip
lqer's outputs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from lqer.errors import LqerError
from lqer.io.files import (
    atomic_path,
    check_output_folder,
    existing_folder_above,
    probe_writable,
    remove_stale_temporaries,
    write_text,
)
from lqer.io.locks import locked

log = logging.getLogger(__name__)

KINDS = ("run", "detector", "compare", "scan", "explain", "report", "noise-sweep", "patches")
REGISTRY = ".lqer-files"
CLASS_FOLDERS = ("negative", "positive")  # as lqer.data.layout.CLASSES; io imports no data code
Inputs = Iterable[str | os.PathLike] | Mapping[str, str | os.PathLike]  # paths, or what -> path


# ----------------------------------------------------------------------------- checks


def check_output_file(path: str | os.PathLike, option: str, inputs: Inputs = ()) -> Path:
    """Fail early, before any work, if `path` cannot become this command's output file."""
    path = Path(path)
    if path.is_dir():
        raise LqerError(f"{option}: {path} is a folder; name a file")
    probe_writable(existing_folder_above(path.parent, option), option)
    check_apart(path, option, inputs)
    if _exists(path) and not written_by_lqer(path):
        raise LqerError(
            f"{option}: {path} exists and lqer did not write it (or it changed since); "
            "choose another name or move it away"
        )
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
    option: str = "`out`",
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
def owned_folder(path: Path, kind: str, option: str = "`out`") -> Iterator[Path]:
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
