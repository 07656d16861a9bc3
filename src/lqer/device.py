"""The torch device a command runs on, from a user's word for it."""

from __future__ import annotations

import torch

from lqer.errors import LqerError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LqerError(f"--device: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LqerError("--device: CUDA was asked for but no GPU is available")
    return device
