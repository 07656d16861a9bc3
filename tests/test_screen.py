"""`lqer.data.screen`: the reason a decoded image lies outside what a patch model was trained
on, or None."""

import numpy as np

from lqer.data.images import load_gray
from lqer.data.screen import screen


def test_blank_and_constant_images_are_flagged():
    assert "blank or constant" in screen(np.zeros((64, 64), np.uint8))
    assert "blank or constant" in screen(np.full((64, 64), 180, np.uint8))
    nearly = np.full((64, 64), 90, np.uint8)
    nearly[::8, ::8] = 91  # a grey level here and there is still blank
    assert "blank or constant" in screen(nearly)


def test_patches_pass_and_whole_frames_are_flagged(datasets_dir):
    noise = np.random.default_rng(0).integers(0, 256, (52, 52), dtype=np.uint8)
    assert screen(noise) is None
    patch = sorted((datasets_dir / "P-ADSD/validation/positive").glob("*.png"))[0]
    assert screen(load_gray(patch)) is None
    frame = np.random.default_rng(1).integers(0, 256, (1024, 1024), dtype=np.uint8)
    assert "1024x1024 image is far larger than a patch" in screen(frame)
    assert "blank" in screen(np.zeros((1024, 1024), np.uint8))  # blankness is said first
    assert screen(frame, patch_side=None) is None  # a scan cuts its own patches
    assert screen(frame[:498, :498]) is None  # up to 3 x 166 px is a patch's size
