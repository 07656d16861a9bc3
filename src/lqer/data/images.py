"""Reading single images as 8-bit grayscale, whatever their mode or bit depth.

Integer images wider than 8 bits are scaled by the bit depth they actually use, not by their
container: X-ray detectors give 10, 12 or 14 bits, which PNG and TIFF store in 16-bit samples
and DICOM in 16-bit words, and dividing 12-bit data (0-4095) by 65535 gives an image of 0-16.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 40_000_000
BIT_DEPTHS = (8, 10, 12, 14, 16)  # what detectors deliver; 8 for 8-bit data in a 16-bit file


class BadImage(Exception):
    """An image that cannot be used; the message says why, in a few words."""


def is_image(path: Path) -> bool:
    visible = not path.name.startswith(".")
    return visible and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def bit_depth(array: np.ndarray, significant: int | None = None) -> int:
    """The bits an integer image uses: `significant` (PNG sBIT, DICOM BitsStored) if its values
    fit in them, else the smallest of 8, 10, 12, 14, 16 (or more, for 32-bit data) that holds
    the maximum.

    Values beyond `significant` mean the writer scaled the samples up to the full container,
    as the PNG standard asks, so the metadata then describes the source, not the samples.
    """
    top = int(array.max(initial=0))
    if significant and 0 < significant <= 64 and top < 2**significant:
        return significant
    return next((bits for bits in BIT_DEPTHS if top < 2**bits), max(16, top.bit_length()))


def to_uint8_gray(array: np.ndarray, significant_bits: int | None = None) -> np.ndarray:
    """(H, W) or (H, W, C) array of any integer or float type -> (H, W) uint8.

    Integers wider than 8 bits are divided by 2**bit_depth - 1 (see `bit_depth`), floats are
    stretched from their minimum to their maximum unless they lie within 0-1.
    """
    if array.ndim == 3:
        channels = array.shape[2]
        if channels in (2, 4):  # drop alpha
            array = array[..., : channels - 1]
        if array.shape[2] == 1 or np.all(array == array[..., :1]):
            array = array[..., 0]
        else:  # genuine colour: ITU-R 601 luma, as PIL's convert("L")
            array = array[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    if array.ndim != 2:
        raise BadImage(f"unsupported shape {array.shape}")
    if array.size == 0:
        raise BadImage("empty image")
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        top = 2 ** bit_depth(array, significant_bits) - 1
        return np.clip(np.round(array.astype(np.float64) * (255 / top)), 0, 255).astype(np.uint8)
    if not np.issubdtype(array.dtype, np.floating):
        raise BadImage(f"unsupported pixel type {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise BadImage("non-finite pixel values")
    lo, hi = float(array.min()), float(array.max())
    if hi <= 1.0 and lo >= 0.0:
        lo, hi = 0.0, 1.0
    scaled = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
    return np.round(scaled * 255).astype(np.uint8)


def png_significant_bits(path: str | Path) -> int | None:
    """The largest colour entry of a PNG's sBIT chunk, which PIL does not read; None if absent."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                return None
            colour_type = None
            for _ in range(64):  # sBIT must come before the image data, near the start
                length, kind = struct.unpack(">I4s", f.read(8))
                if kind in (b"IDAT", b"IEND"):
                    return None
                data = f.read(min(length, 16))
                if kind == b"IHDR" and len(data) >= 10:
                    colour_type = data[9]
                elif kind == b"sBIT" and data:
                    channels = 3 if colour_type in (2, 3, 6) else 1  # alpha is not colour
                    return max(data[:channels])
                f.seek(length - len(data) + 4, 1)  # the rest and the CRC
    except (OSError, struct.error):
        return None
    return None


def image_shape(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file from its header, without decoding its pixels, so that a
    caller can refuse one too large to decode (before any EXIF rotation)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the caller decides
            with Image.open(path) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        raise BadImage("too many pixels (decompression bomb)") from None
    except Exception as e:  # PIL raises many unrelated types for broken files
        raise BadImage(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    return height, width


def load_gray(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to an (H, W) uint8 array, upright as its EXIF orientation says,
    or raise BadImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                png = im.format == "PNG"
                width, height = im.size
                if width * height > max_pixels:
                    raise BadImage(f"{width}x{height} pixels is over the limit of {max_pixels}")
                if width == 0 or height == 0:
                    raise BadImage("empty image")
                im.load()
                ImageOps.exif_transpose(im, in_place=True)
                if im.mode in ("P", "PA"):
                    im = im.convert("RGBA")
                elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")
                array = np.array(im)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("too many pixels (decompression bomb)") from None
    except Exception as e:  # PIL's decoders raise many unrelated types for broken files
        raise BadImage(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    wide = array.dtype.itemsize > 1 and np.issubdtype(array.dtype, np.integer)
    return to_uint8_gray(array, png_significant_bits(path) if png and wide else None)
