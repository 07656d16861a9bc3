"""The torch device a command runs on, from a user's word for it, and the precision it trains in."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from lqer.errors import LqerError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LqerError(f"`device`: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LqerError("`device`: CUDA was asked for but no GPU is available")
    return device


def _cpuinfo(field: str) -> str | None:
    """The first value of `field` in /proc/cpuinfo; None where there is none."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith(field):
            return line.split(":", 1)[1].strip()
    return None


@functools.lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name; runs and benchmarks name it beside timings."""
    return _cpuinfo("model name") or platform.processor() or platform.machine() or "unknown CPU"


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags; empty where /proc/cpuinfo has none."""
    return frozenset((_cpuinfo("flags") or "").split())


def available_memory() -> int | None:
    """Bytes of memory the system can give without swapping (MemAvailable), or None."""
    meminfo = Path("/proc/meminfo")
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # in kB
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unixes: free pages only, a lower bound
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need: int, what: str) -> None:
    """An LqerError, before anything is allocated, when `what` needs more than is available."""
    free = available_memory()
    if free is not None and need > free:
        raise LqerError(f"{what} needs about {_bytes(need)} of memory; {_bytes(free)} available")


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


@dataclass(frozen=True)
class Precision:
    bf16: bool  # autocast to bfloat16
    channels_last: bool


# Measured with benchmarks/train_throughput.py: on a Xeon with AMX, ResNet18 trained at 64 px
# 1.5x faster in bf16 with channels_last than in float32, and at 32 px no faster. CPUs
# without AMX (an AVX2 EPYC here) run bf16 convolutions slower than float32.
CPU_BF16_FROM = 64


def training_precision(device: torch.device, image_size: int, amp: bool, channels_last: bool):
    """bf16 autocast and channels_last where they pay off: on CUDA when asked, and on a CPU
    with AMX from CPU_BF16_FROM px; float32 and the default layout elsewhere."""
    if device.type == "cuda":
        return Precision(amp, channels_last)
    fast = device.type == "cpu" and image_size >= CPU_BF16_FROM and "amx_bf16" in cpu_flags()
    return Precision(amp and fast, channels_last and fast)
