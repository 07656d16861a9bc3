"""Reading single images as 8-bit grayscale, whatever their mode or bit depth."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 40_000_000


class BadImage(Exception):
    """An image that cannot be used; the message says why, in a few words."""


def is_image(path: Path) -> bool:
    visible = not path.name.startswith(".")
    return visible and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def to_uint8_gray(array: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) array of any integer or float type -> (H, W) uint8."""
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
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        top = 65535 if array.max(initial=0) > 255 else 255
        return np.clip(np.round(array.astype(np.float64) * (255 / top)), 0, 255).astype(np.uint8)
    lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
    if not np.isfinite([lo, hi]).all():
        raise BadImage("non-finite pixel values")
    if hi <= 1.0 and lo >= 0.0:
        lo, hi = 0.0, 1.0
    scaled = (array - lo) / (hi - lo) if hi > lo else np.zeros_like(array)
    return np.round(scaled * 255).astype(np.uint8)


def load_gray(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to an (H, W) uint8 array, or raise BadImage."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise BadImage(f"{width}x{height} pixels is over the limit of {max_pixels}")
                if width == 0 or height == 0:
                    raise BadImage("empty image")
                im.load()
                if im.mode == "P":
                    im = im.convert("RGBA")
                array = np.array(im)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("too many pixels (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    return to_uint8_gray(array)
