"""Patch datasets, decoded once into memory.

A split is a class folder or the rows of a split file, as `lqer.data.layout` reads them.
A few tens of thousands of small patches fit in memory as uint8, so every epoch reads RAM, or
device memory, never the disk.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from lqer.config import DataConfig
from lqer.data.frames import FrameRef, read_frame
from lqer.data.images import DEFAULT_MAX_PIXELS, BadImage, load_gray
from lqer.data.layout import (
    SPLITS,
    augmentation_groups,
    list_folder,
    read_split_file,
    split_folder,
    split_folders,
)
from lqer.data.screen import screen
from lqer.data.transforms import resize
from lqer.errors import LqerError
from lqer.logs import progress


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, 1, S, S) uint8
    labels: torch.Tensor  # (N,) int64
    paths: list[str]
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), --skip-bad
    notes: dict[str, str] = field(default_factory=dict)  # path -> why the model may not apply

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def size(self) -> int:
        """The side S of the square images, so that no caller reads it from a config."""
        return self.images.shape[-1]

    @property
    def skipped(self) -> int:
        """Bad files left out with --skip-bad."""
        return len(self.bad)

    def subset(self, index: np.ndarray | torch.Tensor) -> ImageSet:
        """The images at `index`; the bad files stay with the whole set, see `hold_out`."""
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], [self.paths[i] for i in index])

    @property
    def counts(self) -> tuple[int, int]:
        positives = int(self.labels.sum())
        return len(self) - positives, positives


Source = Path | FrameRef  # an image file, or one frame of a DICOM file


def source_name(source: Source) -> str:
    """The file, and for a frame of a multi-frame DICOM file its number: `run.dcm#3`."""
    if isinstance(source, FrameRef):
        return (
            f"{source.path}#{source.index + 1}"
            if source.id != source.path.stem
            else str(source.path)
        )
    return str(source)


def _read(source: Source, max_pixels: int) -> np.ndarray:
    if isinstance(source, FrameRef):
        return read_frame(source, max_pixels)
    return load_gray(source, max_pixels)


def _decode(
    source: Source, size: int, max_pixels: int, notes: dict[str, str] | None = None
) -> torch.Tensor:
    """The model input of one source; `notes` collects why a patch model may not apply to the
    image (`lqer.data.screen`), which only the whole decoded image tells."""
    image = _read(source, max_pixels)
    if notes is not None and (note := screen(image)):
        notes[source_name(source)] = note
    return model_input(image, size)[0]


def model_input(image: np.ndarray, size: int) -> torch.Tensor:
    """(1, 1, S, S) uint8: a decoded (H, W) image resized as every patch lqer reads."""
    return resize(torch.from_numpy(np.ascontiguousarray(image))[None, None], size)


Decoded = dict[tuple[str, int, int], torch.Tensor | str]  # (path, size, max_pixels) -> image


def decode(
    items: list[tuple[Source, int]],
    image_size: int,
    skip_bad: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    where: str = "",
    cache: Decoded | None = None,
    screened: bool = False,
) -> ImageSet:
    """Decode and resize every image; list every bad file unless `skip_bad`. A `cache` shared
    between calls decodes a file once however many sets it is in (a comparison's seeds).
    `screened`: note each image a patch model was not trained on (`lqer.data.screen`)."""
    cache = {} if cache is None else cache
    notes: dict[str, str] = {}

    def work(item):
        key = (source_name(item[0]), image_size, max_pixels)
        if key not in cache:
            try:
                cache[key] = _decode(item[0], image_size, max_pixels, notes if screened else None)
            except BadImage as e:
                cache[key] = str(e)
        return cache[key]

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decoded = list(progress(pool.map(work, items), f"reading images{where}", len(items)))
    bad = [(source_name(p), r) for (p, _), r in zip(items, decoded, strict=True)
           if isinstance(r, str)]  # fmt: skip
    if bad and not skip_bad:
        listing = "; ".join(f"{p} ({reason})" for p, reason in bad)
        raise LqerError(f"{len(bad)} bad image(s){where}, rerun with `skip_bad` to skip: {listing}")
    good = [(item, r) for item, r in zip(items, decoded, strict=True) if not isinstance(r, str)]
    if not good:
        raise LqerError(f"no readable images{where}")
    images = torch.stack([r for _, r in good])
    labels = torch.tensor([label for (_, label), _ in good], dtype=torch.long)
    return ImageSet(images, labels, [source_name(p) for (p, _), _ in good], bad, notes)


def check_both_classes(data: ImageSet, name: str) -> None:
    negatives, positives = data.counts
    if not negatives or not positives:
        raise LqerError(f"{name} holds only one class ({negatives} negative, {positives} positive)")


def load_folder(
    split_dir: str | Path,
    image_size: int,
    skip_bad: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageSet:
    return decode(list_folder(split_dir), image_size, skip_bad, max_pixels, f" in {split_dir}")


def stratified_indices(labels: torch.Tensor, fraction: float, seed: int) -> np.ndarray:
    """A random `fraction` of each class, at least one per class."""
    rng = np.random.default_rng(seed)
    labels = labels.numpy()
    picked = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        k = max(1, round(fraction * len(members)))
        picked.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


def held_out(paths: list, labels: torch.Tensor, fraction: float, seed: int) -> np.ndarray:
    """Which items a stratified `fraction` holds out for validation, keeping augmented copies
    with their original."""
    groups = augmentation_groups(paths)
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    held_groups = stratified_indices(labels[first], fraction, seed)
    return np.isin(inverse, held_groups)


def hold_out(data: ImageSet, fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Split off a stratified `fraction` for validation (`held_out`).

    The bad files skipped in `data` stay on the training part, the split they were listed in.
    """
    held = held_out(data.paths, data.labels, fraction, seed)
    train = replace(data.subset(np.flatnonzero(~held)), bad=list(data.bad))
    return train, data.subset(np.flatnonzero(held))


def _limit(items: list[tuple[Path, int]], limit: int | None, seed: int) -> list[tuple[Path, int]]:
    if limit is None or limit >= len(items):
        return items
    labels = torch.tensor([label for _, label in items])
    keep = stratified_indices(labels, limit / len(items), seed)
    return [items[i] for i in keep]


def _limit_originals(items: list, limit: int, seed: int) -> list:
    """A stratified `limit` of the original images, each with its offline-augmented copies."""
    paths = [source_name(p) for p, _ in items]
    originals = len(set(augmentation_groups(paths)))
    if limit >= originals:
        return items
    kept = held_out(paths, torch.tensor([y for _, y in items]), limit / originals, seed)
    return [item for item, keep in zip(items, kept, strict=True) if keep]


def list_experiment(
    cfg: DataConfig, seed: int = 0
) -> tuple[dict[str, list[tuple[Source, int]] | None], dict[str, str]]:
    """The (source, label) items of the `train`, `val` and `test` splits that `cfg` names
    (None: not configured), after `data.limit` and `data.train_limit`; and where each split
    comes from, for messages. Nothing is decoded."""
    if cfg.split_file:
        groups = read_split_file(cfg.split_file)
        sources = {name: groups.get(name) for name in SPLITS}
        if not sources["train"]:
            raise LqerError(f"{cfg.split_file}: no rows with split 'train'")
        describe = {name: f" in split {name!r} of {cfg.split_file}" for name in sources}
    else:
        names = split_folders(cfg)
        sources = {k: list_folder(split_folder(cfg, v)) if v else None for k, v in names.items()}
        describe = {k: f" in {split_folder(cfg, v)}" for k, v in names.items() if v}
    sources = {k: _limit(items, cfg.limit, seed) if items else None for k, items in sources.items()}
    if cfg.train_limit is not None:
        sources["train"] = _limit_originals(sources["train"], cfg.train_limit, seed)
    return sources, describe


def listed_sets(cfg: DataConfig, seed: int = 0) -> dict[str, tuple[list[str], np.ndarray]]:
    """What `load_experiment` would give, as (paths, labels) per split, without decoding: the
    validation hold-out is drawn the same way, so the two agree wherever no file is bad."""
    sources, describe = list_experiment(cfg, seed)
    sets = {k: ([source_name(p) for p, _ in items], np.array([y for _, y in items]))
            for k, items in sources.items() if items}  # fmt: skip
    if "val" not in sets:
        paths, labels = sets["train"]
        held = held_out(paths, torch.as_tensor(labels), cfg.val_fraction, seed)
        sets["train"] = ([p for p, h in zip(paths, held, strict=True) if not h], labels[~held])
        sets["val"] = ([p for p, h in zip(paths, held, strict=True) if h], labels[held])
    for name, (_, labels) in sets.items():
        if len(set(labels.tolist())) < 2:
            where = describe.get(name, " (held out of the training split)")
            raise LqerError(f"the {name} split{where} holds only one class")
    return sets


def fingerprint(
    sets: dict[str, tuple[Sequence[str], Sequence[int]]], digests: dict[str, str] | None = None
) -> dict:
    """Size, positives, prevalence and a content hash of every split, and one hash of all;
    `sets` as `listed_sets` gives them. Hashes cover the files' bytes and labels, not their
    paths, so a moved copy hashes the same. `digests` caches each file's hash across calls."""
    digests = {} if digests is None else digests
    out, overall = {}, hashlib.sha256()
    for split in sorted(sets):
        paths, labels = sets[split]
        labels = [int(y) for y in labels]
        entries = sorted(zip((_digest(p, digests) for p in paths), labels, strict=True))
        digest = hashlib.sha256("\n".join(f"{h},{y}" for h, y in entries).encode()).hexdigest()
        overall.update(f"{split}:{digest}\n".encode())
        positives = sum(labels)
        out[split] = {
            "n": len(labels),
            "positives": positives,
            "prevalence": positives / max(1, len(labels)),
            "sha256": digest,
        }
    return {"splits": out, "sha256": overall.hexdigest()}


def _digest(name: str, digests: dict[str, str]) -> str:
    """The hash of a source's file; a frame of a cine run (`run.dcm#3`) adds its number."""
    if name not in digests:
        file, _, frame = name.rpartition("#") if not os.path.exists(name) else (name, "", "")
        digest = hashlib.sha256(Path(file or name).read_bytes())
        digest.update(frame.encode())  # nothing for a whole file
        digests[name] = digest.hexdigest()
    return digests[name]


def load_experiment(
    cfg: DataConfig, seed: int = 0, cache: Decoded | None = None
) -> dict[str, ImageSet]:
    """The `train`, `val` and (if configured) `test` sets of an experiment; see `decode` for
    `cache`."""
    sources, describe = list_experiment(cfg, seed)
    sets = {}
    for name, items in sources.items():
        if items:
            where = describe[name]
            sets[name] = decode(items, cfg.image_size, cfg.skip_bad, cfg.max_pixels, where, cache)
    return with_validation(sets, cfg, seed, describe)


def with_validation(
    sets: dict[str, ImageSet], cfg: DataConfig, seed: int, describe: dict[str, str]
) -> dict[str, ImageSet]:
    """Hold validation out of `train` where no split gives it, and check that every split
    holds both classes; the tail of every experiment loader (images or a pack)."""
    check_both_classes(sets["train"], f"the training split{describe['train']}")
    if "val" not in sets:
        sets["train"], sets["val"] = hold_out(sets["train"], cfg.val_fraction, seed)
    for name in ("val", "test"):
        if name in sets:
            check_both_classes(sets[name], f"the {name} split{describe.get(name, '')}")
    return sets
