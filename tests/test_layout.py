"""One split-file reader: training and the audit read the same files with the same rules."""

import pytest
from typer.testing import CliRunner

from lqer.cli.data import app
from lqer.config import DataConfig
from lqer.data.dataset import load_experiment
from lqer.data.layout import fold_file, fold_folders, read_split_file, split_folder
from lqer.data.split_audit import gather
from lqer.data.splits import read_manifest
from lqer.errors import LqerError


def split_file(root, labels=("positive", "negative")):
    """Five images per class in train and three in test, labels spelt as `labels` (1, 0)."""
    rows = ["path,label,split"]
    for split, folder, n in (("train", "train", 5), ("test", "validation", 3)):
        for label, name in zip(labels, ("positive", "negative"), strict=True):
            rows += [f"{folder}/{name}/{i:03d}.png,{label},{split}" for i in range(n)]
    path = root / "split.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("labels", [("positive", "negative"), ("1", "0"), (" 1", "negative ")])
def test_training_and_audit_accept_both_label_spellings(tiny_dataset, labels):
    path = split_file(tiny_dataset, labels)
    sets = load_experiment(DataConfig(split_file=str(path), image_size=16, val_fraction=0.4))
    assert sets["test"].counts == (3, 3) and len(sets["train"]) + len(sets["val"]) == 10
    paths, y, names = gather(split_file=path)
    assert list(names) == ["train"] * 10 + ["test"] * 6
    assert list(y) == [1] * 5 + [0] * 5 + [1] * 3 + [0] * 3
    assert [(p, int(label)) for p, label in zip(paths, y, strict=True)] == [
        item for items in read_split_file(path).values() for item in items
    ]


def test_audit_of_a_split_file_with_word_labels(tiny_dataset):
    result = CliRunner().invoke(app, ["audit", "--split-file", str(split_file(tiny_dataset))])
    assert result.exit_code == 0, result.output
    assert "images: train 10, test 6" in result.output


def test_a_bad_label_is_the_same_one_line_error_for_training_and_audit(tiny_dataset):
    path = split_file(tiny_dataset)
    path.write_text(path.read_text().replace("001.png,positive", "001.png,2", 1))
    for read in (lambda: load_experiment(DataConfig(split_file=str(path))),
                 lambda: gather(split_file=path)):  # fmt: skip
        with pytest.raises(LqerError, match=r"split.csv:3: label must be 0/1 or negative/positive"):
            read()


def test_manifest_labels_follow_the_same_rule(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label\na.png,positive\nb.png,0\nc.png,yes\n")
    with pytest.raises(LqerError, match=r"manifest.csv:4: label must be"):
        read_manifest(manifest)


def test_fold_names(tmp_path):
    for k in (1, 0):
        (tmp_path / f"fold{k}" / "train").mkdir(parents=True)
    assert fold_folders(tmp_path) == [tmp_path / "fold0", tmp_path / "fold1"]
    assert split_folder(DataConfig(root=str(tmp_path), fold=1), "train").is_dir()
    assert fold_file(tmp_path / "split.csv", 2) == tmp_path / "split_fold2.csv"
