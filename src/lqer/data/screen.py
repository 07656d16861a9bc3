"""Whether a decoded image is something a patch classifier was trained to judge.

A classifier answers on anything: the shipped model calls an all-black patch a stenosis
(p = 0.896), and one label for a whole 1024x1024 frame says nothing about where a stenosis
lies. Callers keep the answer and attach the reason this gives (the server's `warning`, the
`reason` column of `lqer predict`), so that nobody reads it as a finding.
"""

from __future__ import annotations

import math

import numpy as np

LARGEST_PATCH = 166  # px: P-ADSD's patches are 32-166 px
MIN_STD = 2.0  # grey levels: below this an image is blank or constant
SAMPLE = 2**20  # pixels: the spread of a larger image is estimated on a grid of about this many


def screen(image: np.ndarray, patch_side: int | None = LARGEST_PATCH) -> str | None:
    """A short reason why a decoded (H, W) uint8 `image` lies outside what a patch model was
    trained on, or None if it does not: blank or constant (standard deviation under 2 grey
    levels), or a side over 3 times `patch_side`, the largest training patch. Pass
    `patch_side=None` where the caller cuts patches itself (a scan): only blankness applies."""
    height, width = image.shape
    step = max(1, math.ceil(math.sqrt(image.size / SAMPLE)))
    spread = float(image[::step, ::step].std())
    if spread < MIN_STD:
        return (f"blank or constant image (standard deviation {spread:.1f} grey levels): "
                "the model was not trained on such input")  # fmt: skip
    if patch_side is not None and max(height, width) > 3 * patch_side:
        return (f"a {width}x{height} image is far larger than a patch (at most {patch_side} px "
                "in training): one label for all of it is no finding; scan it instead")  # fmt: skip
    return None
