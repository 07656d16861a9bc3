"""Pack P-ADSD train and validation as 64x64 grayscale PNG strips (about 58 MB) for
`benchmarks/gpu_check.sh`, into a git-ignored folder.

    python benchmarks/pack_padsd.py                 # -> .pack/padsd
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from lqer.data.pack import write_pack

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LQER_DATASETS", REPO.parent / "shared" / "datasets"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=DATASETS / "P-ADSD")
    parser.add_argument("--out", type=Path, default=REPO / ".pack" / "padsd")
    args = parser.parse_args()
    started = time.perf_counter()
    counts = write_pack(args.root, ["train", "validation"], args.out)
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"packed {counts} into {args.out}: {size / 1e6:.1f} MB "
          f"in {time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
