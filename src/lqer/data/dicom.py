"""DICOM pixels as 8-bit grayscale frames, with pydicom: the modality LUT, the VOI LUT or
window, MONOCHROME1 inverted, 8 to 16 stored bits.

Only pixel data and the tags that describe it are read, so nothing here can carry a patient's
name, ids, dates or institution into an output; errors name the file, never a tag's value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lqer.data.images import DEFAULT_MAX_PIXELS, BadImage, bit_depth, to_uint8_gray

DICOM_SUFFIXES = (".dcm", ".dicom")
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
    return number_of_frames(_read(Path(path), pixels=False))


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
