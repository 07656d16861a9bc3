"""Offline A-DSSS augmentation of training positives."""

import shutil

import numpy as np
import pytest
import torch

from lqer.data.augment import RandomQuarterTurn, augment_positives, originals
from lqer.data.images import load_gray
from lqer.errors import LqerError


@pytest.fixture
def split_dir(datasets_dir, tmp_path):
    """A train folder holding 12 original A-DSSS positives and 3 negatives."""
    source = datasets_dir / "A-DSSS" / "fold0" / "train"
    for name, files in (("positive", originals(source / "positive")[:12]),
                        ("negative", sorted((source / "negative").iterdir())[:3])):  # fmt: skip
        (tmp_path / "train" / name).mkdir(parents=True)
        for path in files:
            shutil.copyfile(path, tmp_path / "train" / name / path.name)
    return tmp_path / "train"


def test_quarter_turn_is_an_exact_rotation():
    image = torch.arange(12, dtype=torch.uint8).reshape(1, 3, 4)
    torch.manual_seed(0)
    turned = [RandomQuarterTurn()(image) for _ in range(20)]
    options = [torch.rot90(image, k, (-2, -1)) for k in (1, 2, 3)]
    for out in turned:
        assert any(out.shape == o.shape and torch.equal(out, o) for o in options)
    assert len({tuple(t.flatten().tolist()) for t in turned}) == 3


def test_augment_writes_copies_beside_positives_only(split_dir, tmp_path):
    assert augment_positives(split_dir, count=3, seed=1) == 36
    positives = sorted(p.name for p in (split_dir / "positive").iterdir() if p.name[0] != ".")
    assert len(positives) == 48 and "1115_aug_02.png" in positives
    assert len(list((split_dir / "negative").iterdir())) == 3
    assert [p.name for p in split_dir.iterdir() if p.name.startswith(".")] == []
    original = load_gray(split_dir / "positive" / "1115.png")
    copies = [load_gray(split_dir / "positive" / f"1115_aug_{n:02d}.png") for n in range(3)]
    assert all(c.shape == original.shape and c.dtype == np.uint8 for c in copies)
    changed = [
        not np.array_equal(load_gray(p), load_gray(p.with_name(p.name[:-11] + ".png")))
        for p in (split_dir / "positive").glob("*_aug_*.png")
    ]
    assert sum(changed) >= 0.9 * len(changed)  # a brightness factor near 1 may change nothing

    with pytest.raises(LqerError, match="`overwrite`"):
        augment_positives(split_dir, count=3)
    assert (
        augment_positives(split_dir, count=3, seed=1, overwrite=True) == 36
    )  # copies not re-augmented
    again = [load_gray(split_dir / "positive" / f"1115_aug_{n:02d}.png") for n in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(copies, again, strict=True))  # seeded


def test_augment_refuses_a_folder_without_positives(tmp_path):
    with pytest.raises(LqerError, match="positive/"):
        augment_positives(tmp_path)
