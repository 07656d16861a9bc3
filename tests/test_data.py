import numpy as np
import pytest
import torch
from conftest import write_image
from PIL import Image

from lqer.config import DataConfig
from lqer.data.dataset import hold_out, load_experiment, load_folder
from lqer.data.images import load_gray
from lqer.data.transforms import RandomCrop, RandomHorizontalFlip, augmentation, eval_transform
from lqer.errors import LqerError


def test_image_modes_all_load_as_gray(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    rgb_equal = np.repeat(gray[..., None], 3, axis=2)
    rgba = np.concatenate([rgb_equal, np.full((8, 8, 1), 255, np.uint8)], axis=2)
    sixteen = gray.astype(np.uint16) * 257
    paths = {
        "gray.png": write_image(tmp_path / "gray.png", gray),
        "rgb.png": write_image(tmp_path / "rgb.png", rgb_equal),
        "rgba.png": write_image(tmp_path / "rgba.png", rgba),
        "g16.png": write_image(tmp_path / "g16.png", sixteen),
        "g.tif": write_image(tmp_path / "g.tif", gray),
        "g.bmp": write_image(tmp_path / "g.bmp", gray),
    }
    Image.fromarray(gray).save(tmp_path / "g.jpg", quality=100)
    for name, path in paths.items():
        assert np.array_equal(load_gray(path), gray), name
    assert np.abs(load_gray(tmp_path / "g.jpg").astype(int) - gray).max() <= 3


def test_real_dataset_layouts(datasets_dir):
    padsd = load_folder(datasets_dir / "P-ADSD" / "validation", 32)
    assert padsd.images.shape == (1216 + 4798, 1, 32, 32) and padsd.images.dtype == torch.uint8
    assert padsd.counts == (4798, 1216)
    cfg = DataConfig(root=str(datasets_dir / "A-DSSS"), fold=1, image_size=32, limit=200)
    sets = load_experiment(cfg)
    assert set(sets) == {"train", "val", "test"}
    assert all(len(s) > 0 and 0 < s.labels.float().mean() < 1 for s in sets.values())


def test_hold_out_keeps_augmented_copies_together(datasets_dir):
    cfg = DataConfig(root=str(datasets_dir / "A-DSSS"), fold=0, image_size=16, test_split=None)
    sets = load_experiment(cfg, seed=3)
    group = lambda p: p.split("_aug_")[0].removesuffix(".png")  # noqa: E731  folder/id
    train_ids = {group(p) for p in sets["train"].paths}
    val_ids = {group(p) for p in sets["val"].paths}
    assert val_ids and not train_ids & val_ids


def test_hold_out_groups_by_folder_as_well_as_name():
    """P-ADSD reuses file names across positive/ and negative/; such files are unrelated."""
    from lqer.data.dataset import ImageSet

    names = [f"{i}.png" for i in range(50)]
    paths = [f"train/negative/{n}" for n in names] + [f"train/positive/{n}" for n in names]
    labels = torch.tensor([0] * 50 + [1] * 50)
    data = ImageSet(torch.zeros(100, 1, 4, 4, dtype=torch.uint8), labels, paths)
    train, val = hold_out(data, 0.2, seed=0)
    assert val.counts == (10, 10) and train.counts == (40, 40)
    held = {p.rsplit("/", 1)[-1] for p in val.paths}
    assert len(held) > 10  # not the same names drawn for both classes


def test_hold_out_is_stratified():
    from lqer.data.dataset import ImageSet

    labels = torch.tensor([0] * 80 + [1] * 20)
    data = ImageSet(
        torch.zeros(100, 1, 4, 4, dtype=torch.uint8), labels, [f"{i}.png" for i in range(100)]
    )
    train, val = hold_out(data, 0.2, seed=0)
    assert val.counts == (16, 4) and train.counts == (64, 16)


def test_bad_inputs_get_one_line_errors(tiny_dataset, tmp_path):
    with pytest.raises(LqerError, match="not found"):
        load_folder(tmp_path / "missing", 16)
    (tiny_dataset / "empty" / "positive").mkdir(parents=True)
    (tiny_dataset / "empty" / "negative").mkdir(parents=True)
    with pytest.raises(LqerError, match="holds no images"):
        load_folder(tiny_dataset / "empty", 16)
    with pytest.raises(LqerError, match="no 'negative/' folder"):
        (tiny_dataset / "half" / "positive").mkdir(parents=True)
        load_folder(tiny_dataset / "half", 16)


def test_corrupt_images_are_all_listed_or_skipped(tiny_dataset):
    good = (tiny_dataset / "train" / "positive" / "000.png").read_bytes()
    (tiny_dataset / "train" / "positive" / "truncated.png").write_bytes(good[: len(good) // 2])
    (tiny_dataset / "train" / "negative" / "junk.png").write_bytes(b"not an image")
    with pytest.raises(LqerError) as err:
        load_folder(tiny_dataset / "train", 16)
    message = str(err.value)
    assert "2 bad image(s)" in message and "truncated.png" in message and "junk.png" in message
    assert "\n" not in message
    data = load_folder(tiny_dataset / "train", 16, skip_bad=True)
    assert data.skipped == 2 and len(data) == 48


def test_pixel_limit(tiny_dataset):
    write_image(tiny_dataset / "train" / "negative" / "huge.png", np.zeros((300, 300), np.uint8))
    with pytest.raises(LqerError, match="huge.png.*over the limit"):
        load_folder(tiny_dataset / "train", 16, max_pixels=200 * 200)


def test_single_class_split(tiny_dataset):
    cfg = DataConfig(root=str(tiny_dataset), image_size=16, test_split=None)
    for f in (tiny_dataset / "train" / "positive").iterdir():
        f.rename(tiny_dataset / "train" / "negative" / f"p{f.name}")
    (tiny_dataset / "train" / "positive" / "x.txt").write_text("")
    with pytest.raises(LqerError, match="holds no images"):
        load_experiment(cfg)


def test_batch_transforms_draw_per_sample():
    torch.manual_seed(0)
    x = torch.arange(16 * 16, dtype=torch.float32).reshape(1, 1, 16, 16).repeat(64, 1, 1, 1)
    cropped = RandomCrop(padding=2)(x)
    assert cropped.shape == x.shape
    assert len({tuple(c.flatten()[:3].tolist()) for c in cropped}) > 5
    flipped = RandomHorizontalFlip()(x)
    n_flipped = int((flipped[:, 0, 0, 0] == x[0, 0, 0, -1]).sum())
    assert 10 < n_flipped < 54
    out = augmentation(16)(x.to(torch.uint8))
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    assert eval_transform(32)(x[:2].to(torch.uint8)).shape == (2, 3, 32, 32)
