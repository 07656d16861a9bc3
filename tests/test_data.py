from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_image
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
    assert sorted(Path(p).name for p, _ in data.bad) == ["junk.png", "truncated.png"]
    assert all(reason for _, reason in data.bad)
    train, val = hold_out(data, 0.25, seed=0)  # the bad files came with the training split
    assert train.bad == data.bad and train.skipped == 2 and val.bad == []


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


def test_site_augmentations_stay_in_range_and_vary_per_sample():
    from lqer.data.transforms import RandomBlur, RandomGamma, RandomNoise

    torch.manual_seed(0)
    x = torch.rand(1, 1, 16, 16).repeat(64, 1, 1, 1)
    for transform in (RandomGamma(1.5), RandomBlur(p=1.0), RandomNoise(0.05)):
        out = transform(x)
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1, transform
        assert len({round(float(o.std()), 5) for o in out}) > 32, transform  # per sample
    flat = torch.full((4, 1, 9, 9), 0.3)
    torch.testing.assert_close(RandomBlur(p=1.0)(flat), flat)  # a blur keeps a flat image
    edge = torch.zeros(1, 1, 9, 9)
    edge[..., 4:] = 1
    assert 0 < float(RandomBlur(p=1.0)(edge)[0, 0, 0, 3]) < 0.5  # and softens an edge
    out = augmentation(16, "sites")((x * 255).to(torch.uint8))
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="train.intensity"):
        augmentation(16, "strong")


def test_clahe_spreads_a_low_contrast_patch_on_the_samples_it_draws():
    from lqer.data.transforms import RandomCLAHE

    torch.manual_seed(0)
    low = 0.4 + 0.1 * torch.rand(1, 1, 32, 32).repeat(64, 1, 1, 1)  # values in [0.4, 0.5]
    out = RandomCLAHE(p=0.5)(low)
    changed = (out - low).abs().flatten(1).amax(1) > 1e-6
    assert 16 < int(changed.sum()) < 48  # drawn per sample
    spread = out[changed].flatten(1)
    assert (spread.amax(1) - spread.amin(1)).min() > 0.2  # contrast stretched past 0.1
    torch.testing.assert_close(out[~changed], low[~changed])
    x = augmentation(32, "sites-clahe")((low * 255).to(torch.uint8))
    assert x.shape == low.shape and x.min() >= 0 and x.max() <= 1


def png_with_sbit(path, array, bits):
    """A 16-bit PNG with an sBIT chunk after IHDR, which PIL does not write."""
    import struct
    import zlib

    write_image(path, array)
    data = path.read_bytes()
    chunk = b"sBIT" + bytes([bits])
    end = 8 + 25  # signature, IHDR
    sbit = struct.pack(">I", 1) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path.write_bytes(data[:end] + sbit + data[end:])
    return path


def test_wide_integer_images_are_scaled_by_the_bits_they_use(tmp_path):
    ramp = np.linspace(0, 4080, 64).astype(np.uint16).reshape(8, 8)  # 12-bit data in 16 bits
    expected = np.round(ramp / 4095 * 255).astype(np.uint8)
    assert np.array_equal(load_gray(write_image(tmp_path / "12.png", ramp)), expected)
    assert np.array_equal(load_gray(write_image(tmp_path / "12.tif", ramp)), expected)
    ten = (ramp // 4).astype(np.uint16)  # 0-1020: 10 bits
    assert load_gray(write_image(tmp_path / "10.png", ten)).max() == 254
    # sBIT says 12 bits although this dark image would fit in 10: the metadata wins.
    dark = png_with_sbit(tmp_path / "dark.png", ten, 12)
    assert np.array_equal(load_gray(dark), np.round(ten / 4095 * 255).astype(np.uint8))
    # sBIT 12 with values up to 65535: scaled to 16 bits as the PNG standard asks.
    full = png_with_sbit(tmp_path / "full.png", ramp * 16 + 15, 12)
    assert np.array_equal(load_gray(full), np.round((ramp * 16 + 15) / 65535 * 255))


def test_exif_orientation_is_applied(tmp_path):
    gray = np.arange(6 * 4, dtype=np.uint8).reshape(6, 4) * 10
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer turns it 90 degrees clockwise
    Image.fromarray(gray).save(tmp_path / "r.png", exif=exif.tobytes())
    upright = np.asarray(Image.fromarray(gray).transpose(Image.Transpose.ROTATE_270))
    assert upright.shape == (4, 6)
    assert np.array_equal(load_gray(tmp_path / "r.png"), upright)


def test_class_folders_are_read_recursively_without_hidden_files(tiny_dataset):
    from lqer.data.layout import list_folder

    positive = tiny_dataset / "train" / "positive"
    image = np.full((20, 20), 200, np.uint8)
    for name in ("more/a.png", "more/deeper/b.png", ".cache/c.png", "more/.d.png"):
        write_image(positive / name, image)
    items = list_folder(tiny_dataset / "train")
    paths = [p.relative_to(positive).as_posix() for p, label in items if label == 1]
    assert len(paths) == 24 + 2 and "more/a.png" in paths and "more/deeper/b.png" in paths
    assert not any(".cache" in p or ".d.png" in p for p in paths)
    assert items == sorted(items) and items == list_folder(tiny_dataset / "train")


def write_split_file(path, rows, header="path,label,split"):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_split_file_mistakes_are_errors_naming_the_line(tiny_dataset):
    from lqer.data.layout import read_split_file

    csv = tiny_dataset / "split.csv"
    good = ["train/positive/000.png,1,train", "train/negative/000.png,0,test"]
    groups = read_split_file(write_split_file(csv, good))
    assert {k: len(v) for k, v in groups.items()} == {"train": 1, "test": 1}
    cases = {
        "unknown split name.*'validation' \\(line 3\\).*allowed: train, val, test": [
            good[0], "train/positive/001.png,1,validation"
        ],
        ":3: expected 3 fields": [good[0], "train/positive/001.png"],
        ":3: .*listed on line 2 too, in split 'train' there and 'test' here: a leak": [
            good[0], "train/positive/000.png,1,test"
        ],
        ":3: .*with label 1 there and 0 here": [good[0], "./train/positive/000.png,0,train"],
        ":3: .*a duplicate row": [good[0], "train/../train/positive/000.png,1,train"],
        ":2: empty path": [",1,train"],
    }  # fmt: skip
    for message, rows in cases.items():
        with pytest.raises(LqerError, match=message) as err:
            read_split_file(write_split_file(csv, rows))
        assert "\n" not in str(err.value)
    csv.write_bytes(b"path,label,split\n\xff\xfe,1,train\n")
    with pytest.raises(LqerError, match="not UTF-8"):
        read_split_file(csv)


def test_split_file_with_a_misspelt_split_stops_the_experiment(tiny_dataset):
    rows = [f"train/{c}/{i:03d}.png,{c},train" for c in ("positive", "negative") for i in range(5)]
    rows += [f"validation/{c}/000.png,{c},tset" for c in ("positive", "negative")]
    csv = write_split_file(tiny_dataset / "split.csv", rows)
    with pytest.raises(LqerError, match="'tset'"):
        load_experiment(DataConfig(split_file=str(csv), image_size=16))


def test_a_shared_cache_decodes_each_file_once(datasets_dir, monkeypatch):
    from lqer.data import dataset

    calls = []
    decode_one = dataset._decode
    monkeypatch.setattr(dataset, "_decode", lambda *args: calls.append(args) or decode_one(*args))
    cfg = DataConfig(root=str(datasets_dir / "A-DSSS"), fold=0, image_size=16, limit=30)
    cache = {}
    first, again = load_experiment(cfg, 0, cache), load_experiment(cfg, 0, cache)
    assert len(calls) == len({args[0] for args in calls}) == len(cache)
    assert all(torch.equal(first[k].images, again[k].images) for k in first)
    other = load_experiment(cfg, 1, cache)  # another seed: only the files seed 0 did not pick
    assert len(calls) == len({args[0] for args in calls}) == len(cache)
    fresh = load_experiment(cfg, 1)
    assert all(torch.equal(other[k].images, fresh[k].images) for k in other)


def test_train_limit_counts_originals_and_leaves_the_other_splits_alone(tmp_path):
    from lqer.data.dataset import list_experiment

    root = tmp_path / "d"
    for split, n in (("train", 12), ("validation", 6)):
        for label in ("positive", "negative"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i:03d}.png").write_bytes(b"")
                if split == "train" and label == "positive":
                    for k in range(3):  # offline-augmented copies travel with their original
                        (folder / f"{i:03d}_aug_{k:02d}.png").write_bytes(b"")
    sources, _ = list_experiment(DataConfig(root=str(root), train_limit=8))
    train = [Path(str(p)).name for p, _ in sources["train"]]
    originals = [name for name in train if "_aug_" not in name]
    assert len(originals) == 8 and len(train) == 8 + 3 * 4  # 4 positives, each with 3 copies
    assert len(sources["test"]) == 12  # validation/ as test: untouched
    with pytest.raises(LqerError, match="data.train_limit"):
        DataConfig(root=str(root), train_limit=3)
