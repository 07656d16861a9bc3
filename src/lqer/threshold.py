"""A decision threshold: the one check of every threshold, asked for on the command line or
stored with a model (checkpoint, shipped weights, ONNX metadata)."""

from __future__ import annotations

import math
from typing import Any

from lqer.errors import LqerError
from lqer.guarded_yaml import shown


def checked_threshold(value: Any, where: str) -> float:
    """A decision threshold as a float, or an LqerError naming `where` (an option or a file):
    the one check of every threshold, asked for or stored. NaN would call every image
    negative, and a threshold outside [0, 1] every image the same."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not 0 <= number <= 1:  # NaN fails this too
        raise LqerError(f"{where}: a threshold must be a number in [0, 1], got {shown(value)}")
    return number
