"""Throughput of the data tooling on the real data: frames/s for make-patches, images/s for the
audit (all P-ADSD train + validation patches by default; the issue asks for under a minute on
two CPU cores).

    python benchmarks/data_tooling.py [--method pixel|phash|both] [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lqer.data.audit import AuditConfig, run_audit
from lqer.data.patches import make_patches
from lqer.data.split_audit import gather

DATASETS = Path(
    os.environ.get("LQER_DATASETS", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)


def bench_patches(repeats: int) -> None:
    adsd = DATASETS / "ADSD-sample"
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        frames = 0
        for k in range(repeats):
            frames += make_patches(adsd / "images", adsd / "annotations", Path(tmp) / str(k)).frames
        seconds = time.perf_counter() - start
    print(f"make-patches: {frames} frames in {seconds:.2f} s = {frames / seconds:.0f} frames/s "
          "(512x512 BMP, 5.5 patches per frame, written as 64x64 PNG)")  # fmt: skip


def cpu_seconds() -> float:
    """User + system time of this process and its finished children (the decoding workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_audit(method: str) -> None:
    root = DATASETS / "P-ADSD"
    start, cpu = time.perf_counter(), cpu_seconds()
    paths, labels, splits = gather({"train": [root / "train"], "test": [root / "validation"]})
    audit = run_audit(paths, labels, splits, AuditConfig(method=method))
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    leaked = audit.leaked("test")
    print(
        f"audit ({method}): {len(paths)} images in {seconds:.1f} s wall = "
        f"{len(paths) / seconds:.0f} images/s; {cpu:.1f} CPU s (about {cpu / 2:.1f} s on two idle "
        f"cores); {leaked.mean():.1%} of validation images have a near-duplicate in train"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="pixel", choices=("pixel", "phash", "both"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, "
          f"load average {np.round(os.getloadavg(), 1).tolist()}")  # fmt: skip
    bench_patches(args.repeats)
    bench_audit(args.method)


if __name__ == "__main__":
    main()
