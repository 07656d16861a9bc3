"""Angiography frames as 8-bit grayscale arrays, from image files or DICOM (multi-frame too).

A multi-frame DICOM `<stem>.dcm` yields frames with ids `<stem>_0001`, `<stem>_0002`, ... (DICOM
numbers frames from 1), so that annotations for them are named like single-frame exports, and
ADSD-style names `<patient>_<sequence>_<n>_<frame>` come out of `<patient>_<sequence>_<n>.dcm`.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lqer.data.dicom import DICOM_SUFFIXES, frame_count, is_dicom, read_dicom
from lqer.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, BadImage, load_gray
from lqer.data.transforms import resize
from lqer.errors import LqerError
from lqer.io import files_under

FRAME_SUFFIXES = IMAGE_SUFFIXES + DICOM_SUFFIXES


@dataclass(frozen=True)
class FrameRef:
    """One frame of one file: `index` is the 0-based frame inside a multi-frame DICOM."""

    id: str
    path: Path
    index: int = 0


def frame_refs(path: Path) -> list[FrameRef]:
    """The frames of one image or DICOM file, or raise BadImage."""
    if not is_dicom(path):
        return [FrameRef(path.stem, path)]
    count = frame_count(path)
    if count == 1:
        return [FrameRef(path.stem, path)]
    return [FrameRef(f"{path.stem}_{k + 1:04d}", path, k) for k in range(count)]


def is_frame_file(path: Path) -> bool:
    visible = not path.name.startswith(".")
    return visible and path.suffix.lower() in FRAME_SUFFIXES and path.is_file()


def list_frames(folder: str | Path) -> list[FrameRef]:
    """Every frame under `folder` (as `lqer.io.files_under` finds files), sorted by id; ids
    must be unique."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LqerError(f"frame folder not found: {folder}")
    frames: dict[str, FrameRef] = {}
    for path in files_under(folder):
        if not is_frame_file(path):
            continue
        try:
            refs = frame_refs(path)
        except BadImage as e:
            raise LqerError(f"{path}: {e}") from None
        for ref in refs:
            if ref.id in frames:
                raise LqerError(f"two frames share the id {ref.id}: {frames[ref.id].path}, {path}")
            frames[ref.id] = ref
    return sorted(frames.values(), key=lambda ref: ref.id)


def collect_frames(paths: Sequence[str | Path]) -> list[FrameRef]:
    """The one path collector of the commands that score what they are given (predict, scan,
    explain, export): every frame of the named files and of each image or DICOM file under
    the named folders, in the order given, each folder's files sorted by path. Ids may repeat
    (positive/1.png and negative/1.png): a command that names outputs by id checks them."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += [f for f in files_under(path) if is_frame_file(f)]
        elif path.is_file():
            files.append(path)
        else:
            raise LqerError(f"no such file or folder: {path}")
    refs: list[FrameRef] = []
    for path in files:
        try:
            refs += frame_refs(path)
        except BadImage as e:
            raise LqerError(f"{path}: {e}") from None
    if not refs:
        raise LqerError(f"no images found in {', '.join(map(str, paths))}")
    return refs


@functools.lru_cache(maxsize=2)  # the frames of a cine run are read one after another
def _dicom_frames(path: Path, max_pixels: int) -> np.ndarray:
    return read_dicom(path, max_pixels)


def read_frame(source: FrameRef | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The one frame reader: a grayscale (H, W) uint8 frame of an image file or of a DICOM
    file (each multi-frame file decoded once while its frames are read); BadImage if not."""
    path, index = (source.path, source.index) if isinstance(source, FrameRef) else (source, 0)
    if not is_dicom(path):
        return load_gray(path, max_pixels)
    frames = _dicom_frames(Path(path), max_pixels)
    if index >= len(frames):
        raise BadImage(f"frame {index + 1} missing, the file has {len(frames)}")
    return frames[index]


def read_frames(
    refs: list[FrameRef],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    skipped: list[tuple[str, str]] | None = None,
) -> Iterator[tuple[FrameRef, np.ndarray]]:
    """Decode frames in order; a file that cannot be read is a one-line LqerError, or, given a
    `skipped` list (`skip_bad`), is listed there as (path, reason) and left out."""
    for ref in refs:
        try:
            image = read_frame(ref, max_pixels)
        except BadImage as e:
            if skipped is None:
                raise LqerError(f"{ref.path}: {e}") from None
            skipped.append((str(ref.path), str(e)))
            continue
        yield ref, image


def _load_resized(job: tuple[Sequence[Path], int]) -> np.ndarray | str:
    paths, size = job
    out = np.empty((len(paths), size, size), dtype=np.uint8)
    for k, path in enumerate(paths):
        try:
            image = load_gray(path)
        except BadImage as e:
            return f"{path}: {e}"
        out[k] = resize(torch.from_numpy(image)[None, None], size)[0, 0].numpy()
    return out


def load_resized(paths: Sequence[Path], size: int, workers: int | None = None) -> np.ndarray:
    """Many small images as one (N, size, size) uint8 array, decoded in parallel processes.

    Threads do not help here: decoding thousands of tiny PNGs is bound by the interpreter.
    """
    workers = workers or os.cpu_count() or 1
    jobs = [(list(paths[i : i + 512]), size) for i in range(0, len(paths), 512)]
    if workers == 1 or len(jobs) == 1:
        parts = [_load_resized(job) for job in jobs]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            parts = list(pool.map(_load_resized, jobs))
    for part in parts:
        if isinstance(part, str):
            raise LqerError(part)
    return np.concatenate(parts) if parts else np.empty((0, size, size), np.uint8)
