"""DICOM pixels as 8-bit grayscale frames, with pydicom: the modality LUT, the VOI LUT or
window, MONOCHROME1 inverted, 8 to 16 stored bits.

Only pixel data and the tags that describe it are read, so nothing here can carry a patient's
name, ids, dates or institution into an output; errors name the file, never a tag's value.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from lqer.data.images import DEFAULT_MAX_PIXELS, BadImage, bit_depth, to_uint8_gray

DICOM_SUFFIXES = (".dcm", ".dicom")
DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian: the whole dataset
HEADER_BYTES = 2**20  # of a deflated dataset inflated to read its tags; headers are far smaller
CHUNK = 2**16
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# pip packages that give pydicom a decoder, by transfer syntax, for the error message
DECODERS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",  # JPEG Extended
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",  # JPEG Lossless, first-order prediction
    "1.2.840.10008.1.2.4.80": "pyjpegls",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",  # HTJ2K
}


def is_dicom(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _read(path: Path, pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError:
        raise BadImage("not a DICOM file") from None
    except Exception as e:  # pydicom raises several unrelated types for broken files
        raise BadImage(f"not a readable DICOM file ({_first_line(e)})") from None


def number_of_frames(ds) -> int:
    try:
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    except Exception:  # pydicom parses tags lazily and raises many types for broken ones
        raise BadImage("NumberOfFrames is not a number") from None
    if frames < 1:
        raise BadImage(f"NumberOfFrames is {frames}")
    return frames


def frame_count(path: str | Path) -> int:
    path = Path(path)
    return number_of_frames(_header(path, _deflated_start(path)))  # a deflated one: its start


def dicom_shape(path: str | Path) -> tuple[int, int, int]:
    """(frames, rows, columns) from the header alone, so that a caller can refuse a file too
    large to decode before decoding it. Of a deflated file only the first `HEADER_BYTES` are
    inflated: pydicom inflates the whole file even to read its tags, and 2 MB can hold 2 GB."""
    return _shape(_header(Path(path), _deflated_start(Path(path))))


def _header(path: Path, deflated_start: int | None):
    if deflated_start is None:
        return _read(path, pixels=False)
    head, _ = _inflate(path, deflated_start, keep=HEADER_BYTES, stop_after=HEADER_BYTES)
    return _parse_header(head)


def _shape(ds) -> tuple[int, int, int]:
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
    except Exception:  # missing (a report) or not a number
        raise BadImage("no pixel data (a DICOM without Rows or Columns, a report?)") from None
    return number_of_frames(ds), rows, cols


def _deflated_start(path: Path) -> int | None:
    """Where a deflated file's dataset starts, after the file meta group; None if not deflated."""
    from pydicom.filereader import read_file_meta_info

    try:  # reading an element may raise too, where the fuzzed or broken meta group is parsed
        meta = read_file_meta_info(path)
        deflated = getattr(meta, "TransferSyntaxUID", None) == DEFLATED
        length = getattr(meta, "FileMetaInformationGroupLength", None) if deflated else None
        length = None if length is None else int(length)
    except Exception:  # not DICOM, or a broken meta group: `_read` says so
        return None
    if not deflated:
        return None
    if length is None:
        raise BadImage("a deflated DICOM without a file meta group length is not supported")
    return 128 + 4 + 12 + length  # preamble, "DICM", the group length element, the group


def _inflate(path: Path, start: int, keep: int, stop_after: int) -> tuple[bytes, int]:
    """The first `keep` bytes of the deflated data from `start` on once inflated, and the size
    it inflates to, counted no further than just past `stop_after`: chunk by chunk, so memory
    stays small whatever the ratio."""
    inflate = zlib.decompressobj(-zlib.MAX_WBITS)
    head, total = bytearray(), 0
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read(CHUNK)
            while data and total <= stop_after:
                out = inflate.decompress(data, CHUNK)
                head += out[: max(0, keep - len(head))]
                total += len(out)
                data = inflate.unconsumed_tail or f.read(CHUNK)
    except zlib.error as e:
        raise BadImage(f"cannot inflate the deflated DICOM ({_first_line(e)})") from None
    return bytes(head), total


def _parse_header(head: bytes):
    """The tags before the pixel data of an inflated dataset's first bytes."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    def at_pixels(tag, vr, length) -> bool:
        return tag >= 0x7FE00008  # FloatPixelData, DoubleFloatPixelData, PixelData

    try:
        return read_dataset(DicomBytesIO(head), False, True, stop_when=at_pixels)
    except Exception as e:  # a header longer than HEADER_BYTES, or broken
        raise BadImage(f"not a readable DICOM file ({_first_line(e)})") from None


def _check_inflated_size(path: Path) -> None:
    """Refuse a deflated file that inflates to more than its pixels need, before pydicom
    inflates it whole: a small header can come with gigabytes of other data."""
    start = _deflated_start(path)
    if start is None:
        return
    ds = _header(path, start)
    frames, rows, cols = _shape(ds)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    depth = -(-int(getattr(ds, "BitsAllocated", 16) or 16) // 8)  # bytes per sample
    need = frames * rows * cols * samples * depth + HEADER_BYTES
    if _inflate(path, start, keep=0, stop_after=need)[1] > need:
        raise BadImage(f"the deflated data inflates to more than its {frames} frames need")


def _check_decodable(ds) -> None:
    from pydicom.pixels import get_decoder

    if not any(tag in ds for tag in PIXEL_TAGS):
        raise BadImage("no pixel data (a DICOM without an image, such as a report)")
    uid = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if uid is None or not uid.is_compressed:
        return
    try:
        available = get_decoder(uid).is_available
    except NotImplementedError:
        available = False
    if not available:
        package = DECODERS.get(str(uid))
        fix = f"pip install {package}" if package else "no decoder for it is known to pydicom"
        raise BadImage(f"transfer syntax {uid.name} ({uid}) is not supported here; {fix}")


def _to_uint8(ds, pixels: np.ndarray) -> np.ndarray:
    """(F, H, W) stored values -> (F, H, W) uint8 display values, one scaling for all frames
    so that a cine run's brightness does not jump between frames."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    rescaled = "ModalityLUTSequence" in ds or float(getattr(ds, "RescaleSlope", 1) or 1) != 1
    rescaled = rescaled or float(getattr(ds, "RescaleIntercept", 0) or 0) != 0
    values = apply_modality_lut(pixels, ds) if rescaled else pixels
    if "WindowCenter" in ds or "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds, prefer_lut=True).astype(np.float64)
        # the ends of the VOI's output range: the window or LUT at the extremes of its input
        lo, hi = apply_voi_lut(np.array([-1e15, 1e15]), ds, prefer_lut=True).astype(np.float64)
        scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)
    if np.issubdtype(values.dtype, np.integer):
        stored = int(getattr(ds, "BitsStored", 0) or 0)
        if values.min(initial=0) < 0:  # signed data: shift to start at 0
            values = values.astype(np.int64) - values.min()
        bits = bit_depth(values, stored)
        return np.stack([to_uint8_gray(frame, bits) for frame in values])
    lo, hi = float(values.min()), float(values.max())  # rescaled to floats: stretch
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values, dtype=np.float64)
    return np.round(scaled * 255).astype(np.uint8)


def read_dicom(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """All frames of a DICOM file as an (F, H, W) uint8 array, or raise BadImage."""
    _check_inflated_size(Path(path))
    ds = _read(Path(path), pixels=True)
    try:
        _check_decodable(ds)
        rows, cols = int(ds.Rows), int(ds.Columns)
        number_of_frames(ds)
        if rows * cols > max_pixels:
            raise BadImage(f"{cols}x{rows} pixels is over the limit of {max_pixels}")
        pixels = np.asarray(ds.pixel_array)
        samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
        inverted = getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1"
        if pixels.ndim == (2 if samples == 1 else 3):  # one frame; pydicom may find more
            pixels = pixels[None]
        if pixels.ndim not in (3, 4) or not pixels.size:
            raise BadImage(f"unexpected pixel array shape {pixels.shape}")
        if samples > 1:  # colour (rare in XA): to gray frame by frame
            return np.stack([to_uint8_gray(frame) for frame in pixels])
        out = _to_uint8(ds, pixels)
    except BadImage:
        raise
    except Exception as e:  # missing decoders, truncated data, bad tags or LUTs
        raise BadImage(f"cannot decode DICOM pixels ({_first_line(e)})") from None
    return 255 - out if inverted else out
