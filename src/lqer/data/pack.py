"""A compact pack of a patch dataset, for machines that have neither the image tree nor a network.

Every patch is resized once to 64x64 grayscale and stacked, 256 to a strip, into PNG strips
(64 px wide, 64 x 256 px tall); `index.csv` names the split, label, original path, strip and
position of each. P-ADSD train and validation pack to about 58 MB, small enough to copy with
the code, and read back in seconds.

    write_pack("../shared/datasets/P-ADSD", ["train", "validation"], ".pack/padsd")
    data = load_packed_experiment(".pack/padsd", cfg.data, seed)   # then fit(cfg, data=data)

Images trained from a pack went through 64 px: at other sizes they are resized from there.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lqer.config import DataConfig
from lqer.data.dataset import ImageSet, decode, stratified_indices, with_validation
from lqer.data.layout import list_folder, split_folders
from lqer.data.transforms import resize
from lqer.errors import LqerError
from lqer.io import atomic_path

PATCH = 64
PER_STRIP = 256


def write_pack(root: str | Path, splits: list[str], out: str | Path) -> dict[str, int]:
    """Pack `root/<split>/{negative,positive}/*` for each split; returns images per split."""
    root, out = Path(root), Path(out)
    (out / "strips").mkdir(parents=True, exist_ok=True)
    rows, counts = [], {}
    for split in splits:
        data = decode(list_folder(root / split), PATCH, where=f" in {root / split}")
        for k, start in enumerate(range(0, len(data), PER_STRIP)):
            strip = f"strips/{split}_{k:04d}.png"
            chunk = data.images[start : start + PER_STRIP, 0].reshape(-1, PATCH).numpy()
            with atomic_path(out / strip) as tmp:
                Image.fromarray(chunk, mode="L").save(tmp, format="png", optimize=True)
            for i in range(start, min(start + PER_STRIP, len(data))):
                path = Path(data.paths[i]).relative_to(root).as_posix()
                rows.append([split, int(data.labels[i]), path, strip, i - start])
        counts[split] = len(data)
    with atomic_path(out / "index.csv") as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "label", "path", "strip", "position"])
        writer.writerows(rows)
    return counts


def read_pack(pack: str | Path, split: str) -> ImageSet:
    """One split of a pack as 64x64 images, in the order they were packed."""
    pack = Path(pack)
    index = pack / "index.csv"
    if not index.is_file():
        raise LqerError(f"{pack} is not a pack (no index.csv)")
    with index.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    if not rows:
        raise LqerError(f"{pack} holds no split {split!r}")
    strips = {}
    for name in dict.fromkeys(r["strip"] for r in rows):
        strip = np.asarray(Image.open(pack / name).convert("L"))
        strips[name] = torch.from_numpy(strip.reshape(-1, 1, PATCH, PATCH).copy())
    images = torch.stack([strips[r["strip"]][int(r["position"])] for r in rows])
    labels = torch.tensor([int(r["label"]) for r in rows])
    return ImageSet(images, labels, [r["path"] for r in rows])


def load_packed_experiment(pack: str | Path, cfg: DataConfig, seed: int = 0) -> dict[str, ImageSet]:
    """`load_experiment` for a pack: the splits `cfg` names, at `cfg.image_size`."""
    names = split_folders(cfg)
    sets = {}
    for name, split in names.items():
        if split:
            data = read_pack(pack, split)
            if cfg.limit is not None and cfg.limit < len(data):
                data = data.subset(stratified_indices(data.labels, cfg.limit / len(data), seed))
            sets[name] = replace(data, images=resize(data.images, cfg.image_size))
    describe = {name: f" {split!r} of {pack}" for name, split in names.items() if split}
    return with_validation(sets, cfg, seed, describe)
