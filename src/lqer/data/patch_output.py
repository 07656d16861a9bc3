"""Which folders make-patches may write, replace or clean up: only its own.

No output may be, hold or lie inside the frames or the annotations. `--overwrite` renames the
old output away and deletes it, so it replaces only a folder whose manifest lists everything in
it. A killed run's work folder is removed by the next run for the same output when it holds
nothing but make-patches' names; this assumes one run per output folder at a time.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lqer.data.layout import CLASSES
from lqer.errors import LqerError
from lqer.io import check_apart, marker

MANIFEST_START = ["path", "label", "frame_id", "source"]  # the first columns make-patches writes
KIND = "patches"  # its output is marked as make-patches'
OUTPUT_NAMES = {*CLASSES, "manifest.csv", "warnings.txt", marker(KIND)}


def check_output(out_dir: Path, sources: dict[str, str | Path], overwrite: bool) -> None:
    """Refuse an output whose writing or replacing could destroy the inputs or other data.

    `--overwrite` renames the old folder away and deletes it, so it is allowed only for a
    folder that make-patches wrote and that holds nothing else, as its manifest lists.
    """
    check_apart(out_dir, "`out`", sources, folder=True)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not overwrite:
        raise LqerError(f"{out_dir} exists; choose another output folder or pass `overwrite`")
    why = foreign_content(out_dir, finished=True)
    if why:
        raise LqerError(
            f"`overwrite`: {out_dir} was not written by make-patches ({why}); "
            "remove it yourself or choose another output folder"
        )


def foreign_content(folder: Path, finished: bool) -> str | None:
    """Why `folder` may hold something that make-patches did not write; None if it does not.

    A `finished` output must have make-patches' manifest listing every patch; a work folder of
    a killed run may lack the manifest, but holds no other names.
    """
    if folder.is_symlink() or not folder.is_dir():
        return "it is not a folder"
    extra = sorted(p.name for p in folder.iterdir() if p.name not in OUTPUT_NAMES)
    if extra:
        return f"it holds {', '.join(extra[:3])}"
    listed = None
    manifest = folder / "manifest.csv"
    if manifest.exists() or finished:
        try:
            with manifest.open(newline="") as f:
                reader = csv.reader(f)
                if next(reader, [])[:4] != MANIFEST_START:
                    return "its manifest.csv lacks make-patches' columns"
                listed = {row[0] for row in reader if row}
        except (OSError, UnicodeDecodeError, csv.Error):
            return "no readable manifest.csv"
    for name in CLASSES:
        class_dir = folder / name
        if not class_dir.exists():
            continue
        if class_dir.is_symlink() or not class_dir.is_dir():
            return f"{name} is not a folder"
        for path in class_dir.iterdir():
            if path.is_symlink() or not path.is_file() or path.suffix != ".png":
                return f"it holds {name}/{path.name}"
            if listed is not None and f"{name}/{path.name}" not in listed:
                return f"its manifest.csv does not list {name}/{path.name}"
    return None
