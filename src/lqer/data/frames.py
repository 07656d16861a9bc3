"""Angiography frames as 8-bit grayscale arrays, from image files or DICOM (multi-frame too).

A multi-frame DICOM `<stem>.dcm` yields frames with ids `<stem>_0001`, `<stem>_0002`, ... (DICOM
numbers frames from 1), so that annotations for them are named like single-frame exports, and
ADSD-style names `<patient>_<sequence>_<n>_<frame>` come out of `<patient>_<sequence>_<n>.dcm`.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lqer.data.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    BadImage,
    bit_depth,
    load_gray,
    to_uint8_gray,
)
from lqer.errors import LqerError

DICOM_SUFFIXES = (".dcm", ".dicom")
FRAME_SUFFIXES = IMAGE_SUFFIXES + DICOM_SUFFIXES


@dataclass(frozen=True)
class FrameRef:
    """One frame of one file: `index` is the 0-based frame inside a multi-frame DICOM."""

    id: str
    path: Path
    index: int = 0


def is_dicom(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES


def _dicom_frame_count(path: Path) -> int:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return _number_of_frames(ds)
    except BadImage:
        raise
    except Exception as e:  # pydicom raises several unrelated types for broken files
        raise BadImage(f"not a readable DICOM file ({_first_line(e)})") from None


def _number_of_frames(ds) -> int:
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames < 1:
        raise BadImage(f"NumberOfFrames is {frames}")
    return frames


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def list_frames(folder: str | Path) -> list[FrameRef]:
    """Every frame under `folder`, sorted by id; ids must be unique."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LqerError(f"frame folder not found: {folder}")
    frames: dict[str, FrameRef] = {}
    for path in sorted(folder.rglob("*")):
        if path.name.startswith(".") or path.suffix.lower() not in FRAME_SUFFIXES:
            continue
        if not path.is_file():
            continue
        if is_dicom(path):
            try:
                count = _dicom_frame_count(path)
            except BadImage as e:
                raise LqerError(f"{path}: {e}") from None
            refs = [FrameRef(f"{path.stem}_{k + 1:04d}", path, k) for k in range(count)]
            if count == 1:
                refs = [FrameRef(path.stem, path)]
        else:
            refs = [FrameRef(path.stem, path)]
        for ref in refs:
            if ref.id in frames:
                raise LqerError(f"two frames share the id {ref.id}: {frames[ref.id].path}, {path}")
            frames[ref.id] = ref
    return sorted(frames.values(), key=lambda ref: ref.id)


def read_dicom(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """All frames of a DICOM file as an (F, H, W) uint8 array, MONOCHROME1 inverted.

    Every frame is scaled by the same bit depth, BitsStored where the values fit in it (see
    `images.bit_depth`), so that the brightness of a sequence does not jump between frames.
    """
    import pydicom

    try:
        ds = pydicom.dcmread(path)
        rows, cols = int(ds.Rows), int(ds.Columns)
        _number_of_frames(ds)
        if rows * cols > max_pixels:
            raise BadImage(f"{cols}x{rows} pixels is over the limit of {max_pixels}")
        pixels = np.asarray(ds.pixel_array)
        samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
        stored = int(getattr(ds, "BitsStored", 0) or 0)
        inverted = getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1"
    except BadImage:
        raise
    except Exception as e:  # missing decoders, truncated data, bad tags
        raise BadImage(f"cannot decode DICOM pixels ({_first_line(e)})") from None
    if pixels.ndim == (2 if samples == 1 else 3):  # one frame; pydicom may find more
        pixels = pixels[None]
    if pixels.ndim not in (3, 4) or not pixels.size:
        raise BadImage(f"unexpected pixel array shape {pixels.shape}")
    bits = bit_depth(pixels, stored) if np.issubdtype(pixels.dtype, np.integer) else None
    out = np.stack([to_uint8_gray(frame, bits) for frame in pixels])
    return 255 - out if inverted else out


def read_frames(
    refs: list[FrameRef], max_pixels: int = DEFAULT_MAX_PIXELS
) -> Iterator[tuple[FrameRef, np.ndarray]]:
    """Decode frames in order, reading each multi-frame DICOM file once."""
    cache: tuple[Path | None, np.ndarray | None] = (None, None)
    for ref in refs:
        try:
            if is_dicom(ref.path):
                if cache[0] != ref.path:
                    cache = (ref.path, read_dicom(ref.path, max_pixels))
                if ref.index >= len(cache[1]):
                    raise BadImage(f"frame {ref.index + 1} missing, the file has {len(cache[1])}")
                image = cache[1][ref.index]
            else:
                image = load_gray(ref.path, max_pixels)
        except BadImage as e:
            raise LqerError(f"{ref.path}: {e}") from None
        yield ref, image


def _load_resized(job: tuple[Sequence[Path], int]) -> np.ndarray | str:
    paths, size = job
    out = np.empty((len(paths), size, size), dtype=np.uint8)
    for k, path in enumerate(paths):
        try:
            image = load_gray(path)
        except BadImage as e:
            return f"{path}: {e}"
        if image.shape != (size, size):
            image = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
        out[k] = image
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
