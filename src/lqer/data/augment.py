"""Offline augmentation of training positives, the recipe behind A-DSSS.

Each copy applies one operation drawn at random: a quarter, half or three-quarter turn, a
horizontal flip, a shift of up to 10% (filled with black), a zoom in of up to 10%, or a
brightness change of up to 20%. One operation per copy is what the published A-DSSS copies
show (each `_aug_NN` file differs from its original by a single rotation, flip, shift or
intensity change). Copies are written beside the originals as `<id>_aug_NN.png`; loaders keep
them in the same group as `<id>`, so a copy never lands in another split than its original.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from lqer import io
from lqer.data.images import BadImage, is_image, load_gray
from lqer.data.layout import AUGMENTED, augmented_name, class_folder
from lqer.errors import LqerError
from lqer.io import written_by_lqer

WORK = "augment"  # the work folder beside positive/ is .augment.XXXXXXXX.tmp


class RandomQuarterTurn(nn.Module):
    """Rotate by 90, 180 or 270 degrees, exactly (no interpolation)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.rot90(image, int(torch.randint(1, 4, ())), dims=(-2, -1))


def a_dsss_transform(shift: float = 0.1, zoom: float = 0.1, brightness: float = 0.2) -> nn.Module:
    """One random operation per call, on a (1, H, W) uint8 tensor."""
    return v2.RandomChoice(
        [
            RandomQuarterTurn(),
            v2.RandomHorizontalFlip(p=1.0),
            v2.RandomAffine(degrees=0, translate=(shift, shift), fill=0),
            v2.RandomAffine(degrees=0, scale=(1.0, 1.0 + zoom), fill=0),
            v2.ColorJitter(brightness=brightness),
        ]
    )


def originals(folder: Path) -> list[Path]:
    """Images in `folder` that are not themselves augmented copies."""
    return sorted(p for p in folder.iterdir() if is_image(p) and not AUGMENTED.search(p.stem))


def _not_copies(work: Path) -> str | None:
    """Why a work folder holds more than augmented copies; None if it does not."""
    if not work.is_dir():
        return "it is not a folder"
    other = [p.name for p in work.iterdir() if not AUGMENTED.search(p.stem)]
    return f"it holds {', '.join(sorted(other)[:3])}" if other else None


def augment_positives(
    split_dir: str | Path, count: int = 4, seed: int = 0, overwrite: bool = False
) -> int:
    """Write `count` copies of every image in `split_dir/positive`; return how many were written.

    The copies are made in a hidden work folder and moved in at the end, so a failed run adds
    nothing; a killed run's work folder is removed by the next run. `overwrite` replaces only
    copies that lqer wrote (`lqer.io.written_by_lqer`).
    """
    folder = class_folder(split_dir, 1)
    if not folder.is_dir():
        raise LqerError(f"{split_dir} has no positive/ folder")
    if count < 1:
        raise LqerError(f"`count` must be at least 1, got {count}")
    sources = originals(folder)
    if not sources:
        raise LqerError(f"no images to augment in {folder}")
    names = [augmented_name(src.stem, n) for src in sources for n in range(count)]
    existing = [folder / name for name in names if (folder / name).exists()]
    if existing and not overwrite:
        raise LqerError(
            f"{len(existing)} augmented file(s) exist, e.g. {existing[0]}; pass `overwrite`"
        )
    foreign = [path for path in existing if not written_by_lqer(path)]
    if foreign:
        raise LqerError(
            f"`overwrite`: {len(foreign)} file(s) named as augmented copies were not written "
            f"by lqer augment (or changed since), e.g. {foreign[0]}; move them away first"
        )
    transform = a_dsss_transform()
    with io.locked(folder, "SPLIT_DIR"):
        work = Path(split_dir) / WORK
        io.remove_stale_work(work, _not_copies)
        with io.work_folder(work) as tmp, torch.random.fork_rng():
            torch.manual_seed(seed)
            for src in sources:
                try:
                    image = torch.from_numpy(load_gray(src))[None]
                except BadImage as e:
                    raise LqerError(f"{src}: {e}") from None
                for n in range(count):
                    out = transform(image)[0].numpy()
                    Image.fromarray(out).save(tmp / augmented_name(src.stem, n))
            for name in names:
                os.replace(tmp / name, folder / name)
            io.record([folder / name for name in names])
    return len(names)
