"""Where a dataset keeps its images, labels and splits: the one module that knows the layouts.

- A split folder holds `negative/` and `positive/` (label 0 and 1; 1 = stenosis), images in
  subfolders too (P-ADSD, A-DSSS and make-patches output).
- A dataset root holds split folders: published as train/, validation/ (our `val`) and test/;
  A-DSSS adds `fold<k>/` above them.
- A split file is a CSV `path,label,split`: label 0/1 or negative/positive, split train, val or
  test, paths relative to the CSV's folder (or absolute); one per fold is `<stem>_fold<k>.csv`.
- Offline-augmented copies are named `<id>_aug_NN` beside their original `<id>`.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lqer.config import DataConfig
from lqer.data.images import is_image
from lqer.errors import LqerError
from lqer.io import files_under, output_file

CLASSES = ("negative", "positive")  # folder of label 0 and 1
LABELS = {"0": 0, "1": 1, "negative": 0, "positive": 1}  # spellings of a label in a CSV
SPLITS = ("train", "val", "test")  # the split names of a split file
PUBLISHED_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}
AUGMENTED = re.compile(r"_aug_\d+$")


def parse_label(text: str, where: str) -> int:
    """A CSV label as 0 or 1; anything else is an error naming `where` (file:line)."""
    label = LABELS.get(text.strip())
    if label is None:
        raise LqerError(f"{where}: label must be 0/1 or negative/positive")
    return label


# ---- folders -------------------------------------------------------------------------------


def class_folder(split_dir: str | Path, label: int) -> Path:
    return Path(split_dir) / CLASSES[label]


def known_label(path: Path) -> int:
    """1 or 0 for a file under a positive/ or negative/ folder (the nearest one), else -1."""
    for parent in Path(path).parents:
        if parent.name in CLASSES:
            return CLASSES.index(parent.name)
    return -1


def list_folder(split_dir: str | Path) -> list[tuple[Path, int]]:
    """(path, label) for every image under `split_dir/{negative,positive}/`, in subfolders and
    linked folders too (as torchvision's ImageFolder reads them), in sorted order; hidden files
    and folders are left out, as the caches and thumbnails that tools put there, and so are
    lqer's own outputs (`lqer.io.files_under`)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise LqerError(f"data folder not found: {split_dir}")
    items = []
    for label, name in enumerate(CLASSES):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            raise LqerError(f"{split_dir} has no '{name}/' folder (needs positive/, negative/)")
        files = _images_under(class_dir)
        if not files:
            raise LqerError(f"class folder {class_dir} holds no images")
        items += [(p, label) for p in files]
    return items


def _images_under(folder: Path) -> list[Path]:
    return [path for path in files_under(folder) if is_image(path)]


def fold_folders(root: str | Path) -> list[Path]:
    """The `fold<k>/` folders of an A-DSSS root, sorted; none for other datasets."""
    return sorted(p for p in Path(root).glob("fold*") if p.is_dir())


def split_folders(cfg: DataConfig) -> dict[str, str | None]:
    """The folder name that `cfg` gives each of train, val and test (None: not given)."""
    return {"train": cfg.train_split, "val": cfg.val_split, "test": cfg.test_split}


def split_folder(cfg: DataConfig, split: str) -> Path:
    root = Path(cfg.root)
    if not root.is_dir():
        raise LqerError(f"data.root: folder not found: {root}")
    base = root / f"fold{cfg.fold}" if cfg.fold is not None else root
    if cfg.fold is not None and not base.is_dir():
        raise LqerError(f"data.fold: {base} does not exist")
    return base / split


def read_tree(root: str | Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Paths, labels and published split names of a `<root>/<split>/{positive,negative}` tree."""
    root = Path(root)
    if not root.is_dir():
        raise LqerError(f"dataset folder not found: {root}")
    paths, labels, splits = [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        split = PUBLISHED_NAMES.get(folder.name)
        if split is None:
            continue
        for path, label in list_folder(folder):
            paths.append(path)
            labels.append(label)
            splits.append(split)
    if not paths:
        raise LqerError(f"{root} has no train/, validation/ or test/ folder with images")
    return paths, np.array(labels), np.array(splits)


def augmented_name(stem: str, n: int) -> str:
    return f"{stem}_aug_{n:02d}.png"


def augmentation_groups(paths: Sequence[str | Path]) -> np.ndarray:
    """Offline-augmented copies `<id>_aug_NN` share a group with their original `<id>` in the
    same folder; files of the same name in different class folders are unrelated."""
    return np.array([str(Path(p).parent / AUGMENTED.sub("", Path(p).stem)) for p in paths])


# ---- split files ---------------------------------------------------------------------------


def fold_file(path: Path, fold: int) -> Path:
    return path.with_name(f"{path.stem}_fold{fold}{path.suffix}")


def read_split_file(path: str | Path) -> dict[str, list[tuple[Path, int]]]:
    """Rows of a split file grouped by split name.

    Mistakes that would silently change an experiment are errors naming the line: a split
    name other than train, val, test (its images would be left out), a missing field, and a
    file listed twice (resolved paths compared), whether with another label, in another split
    (a leak) or as an exact duplicate row, which would count the image twice.
    """
    path = Path(path)
    if not path.is_file():
        raise LqerError(f"split file not found: {path}")
    groups: dict[str, list[tuple[Path, int]]] = {}
    unknown: dict[str, int] = {}  # split name -> first line
    seen: dict[Path, tuple[int, int, str]] = {}  # resolved path -> line, label, split
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"path", "label", "split"} <= set(reader.fieldnames):
                raise LqerError(f"{path}: a split file needs the columns path,label,split")
            for row in reader:
                line = reader.line_num
                if None in row.values() or None in row:
                    raise LqerError(
                        f"{path}:{line}: expected {len(reader.fieldnames)} fields "
                        f"({','.join(reader.fieldnames)})"
                    )
                label = parse_label(row["label"], f"{path}:{line}")
                split = row["split"].strip()
                if split not in SPLITS:
                    unknown.setdefault(split, line)
                    continue
                if not row["path"].strip():
                    raise LqerError(f"{path}:{line}: empty path")
                file = Path(row["path"])
                file = file if file.is_absolute() else path.parent / file
                key = file.resolve()
                if key in seen:
                    raise LqerError(_repeated(path, line, file, seen[key], label, split))
                seen[key] = (line, label, split)
                groups.setdefault(split, []).append((file, label))
    except UnicodeDecodeError as e:
        raise LqerError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise LqerError(f"{path}: not a readable CSV file ({e})") from None
    if unknown:
        names = ", ".join(f"{name!r} (line {line})" for name, line in unknown.items())
        raise LqerError(f"{path}: unknown split name(s) {names}; allowed: {', '.join(SPLITS)}")
    return groups


def _repeated(
    path: Path, line: int, file: Path, first: tuple[int, int, str], label: int, split: str
) -> str:
    first_line, first_label, first_split = first
    where = f"{path}:{line}: {file} is listed on line {first_line} too"
    if first_split != split:
        return f"{where}, in split {first_split!r} there and {split!r} here: a leak between them"
    if first_label != label:
        return f"{where}, with label {first_label} there and {label} here"
    return f"{where}: a duplicate row, which would count the image twice"


def write_split(
    path: str | Path, paths: Sequence[Path], labels: np.ndarray, splits: np.ndarray
) -> None:
    """The split file that `read_split_file` reads, with paths relative to its folder; it
    replaces only a split file lqer wrote (`lqer.io.output_file`)."""
    path = Path(path)
    base = path.resolve().parent
    with output_file(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        for file, label, split in zip(paths, labels, splits, strict=True):
            writer.writerow([os.path.relpath(Path(file).resolve(), base), int(label), split])
