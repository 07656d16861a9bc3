"""Split strategies: groups stay whole, classes are stratified, the file round-trips."""

import numpy as np
import pytest

from lqer.data.layout import augmentation_groups, read_split_file, write_split
from lqer.data.patches import make_patches
from lqer.data.splits import assign, kfold, make_splits, parse_fractions
from lqer.errors import LqerError


def grouped_labels(n_groups=200, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 30, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    labels = (rng.random(len(groups)) < 0.2).astype(int)
    return labels, groups


def test_assign_keeps_groups_whole_and_stratifies():
    labels, groups = grouped_labels()
    splits = assign(labels, groups, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=1)
    for g in np.unique(groups):
        assert len(set(splits[groups == g])) == 1
    for name, share in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        member = splits == name
        assert abs(member.mean() - share) < 0.02
        assert abs(labels[member].sum() / labels.sum() - share) < 0.03


def test_assign_depends_on_the_seed_only():
    labels, groups = grouped_labels()
    fractions = parse_fractions("train=4,test=1")
    assert fractions == {"train": 0.8, "test": 0.2}
    a, b = assign(labels, groups, fractions, 3), assign(labels, groups, fractions, 3)
    assert (a == b).all() and (a != assign(labels, groups, fractions, 4)).any()
    with pytest.raises(LqerError, match="`fractions`"):
        parse_fractions("train=0.8,holdout=0.2")


def test_kfold_tests_every_item_once():
    labels, groups = grouped_labels()
    folds = kfold(labels, groups, 5, seed=0)
    tested = np.stack([f == "test" for f in folds])
    assert (tested.sum(0) == 1).all()
    assert all(0.15 < t.mean() < 0.25 for t in tested)
    for g in np.unique(groups):
        assert tested[:, groups == g].all(1).any()


@pytest.mark.parametrize(
    "k, message",
    [(0, "`folds` must be 2 to 100, got 0"), (1, "got 1"), (101, "got 101"),
     (41, r"`folds` 41: the data has only 40 group\(s\)")],
)  # fmt: skip
def test_fold_counts_are_bounded(k, message):
    labels, groups = np.tile([0, 1], 20), np.arange(40)
    with pytest.raises(LqerError, match=message):
        kfold(labels, groups, k)
    with pytest.raises(LqerError) as caught:  # too few to stratify: a short line, not 4 kB
        kfold(labels, groups, 40)
    assert str(caught.value).endswith("and 15 more") and len(str(caught.value)) < 100


def test_renames_are_for_published_splits_present_in_the_data(tiny_dataset):
    ((_, _, names),) = make_splits("published", tiny_dataset, rename={"validation": "test"})
    assert set(names) == {"train", "test"}  # the folder name or ours, `val`, both work
    for strategy, rename, message in [
        ("random", {"validation": "test"}, "`rename` changes published split names"),
        ("published", {"test": "val"}, "`rename`: 'test' is not a split of .* train, val"),
        ("published", {"val": "validation"}, "`rename`: 'validation' is not one of train, val"),
    ]:
        with pytest.raises(LqerError, match=message):
            make_splits(strategy, tiny_dataset, rename=rename)
    with pytest.raises(LqerError, match="`folds` must be 2 to 100, got 0"):
        make_splits("random", tiny_dataset, folds=0)  # 0 was a single split before


def test_published_split_of_padsd(datasets_dir):
    ((paths, labels, splits),) = make_splits(
        "published", root=datasets_dir / "P-ADSD", rename={"val": "test"}
    )
    assert (splits == "train").sum() == 24052 and (splits == "test").sum() == 6014
    assert labels[splits == "test"].sum() == 1216


def test_published_folds_of_adsss(datasets_dir):
    results = make_splits("published", root=datasets_dir / "A-DSSS")
    assert len(results) == 5
    _, labels, splits = results[0]
    assert (splits == "train").sum() == 385 + 892 and labels[splits == "val"].sum() == 20


def test_random_split_keeps_augmented_copies_with_their_original(datasets_dir, tmp_path):
    ((paths, labels, splits),) = make_splits("random", root=datasets_dir / "A-DSSS" / "fold0")
    groups = augmentation_groups(paths)
    for g in np.unique(groups[labels == 1]):
        assert len(set(splits[groups == g])) == 1
    out = tmp_path / "sub" / "split.csv"
    write_split(out, paths, labels, splits)
    read = read_split_file(out)  # the training loader's reader
    assert sorted(read) == ["test", "train"]
    assert sum(len(v) for v in read.values()) == len(paths)
    assert all(p.is_file() for p, _ in read["test"][:20])
    assert "../" in out.read_text().splitlines()[1]  # relative to the CSV's folder


def test_grouped_and_paper_splits_from_a_manifest(datasets_dir, tmp_path):
    adsd = datasets_dir / "ADSD-sample"
    make_patches(adsd / "images", adsd / "annotations", tmp_path / "p")
    manifest = tmp_path / "p" / "manifest.csv"
    ((paths, labels, splits),) = make_splits(
        "group", manifest=manifest, by="frame", fractions={"train": 0.5, "test": 0.5}
    )
    frames = np.array([p.name[:13] for p in paths])
    assert all(len(set(splits[frames == f])) == 1 for f in set(frames))
    assert set(splits) == {"train", "test"}
    with pytest.raises(LqerError, match="too few"):  # one patient cannot make 80:20
        make_splits("paper", manifest=manifest)
    folds = make_splits("group", manifest=manifest, by="frame", folds=3)
    assert len(folds) == 3 and all(set(s) == {"train", "test"} for _, _, s in folds)


def test_long_option_values_are_cut_in_messages():
    with pytest.raises(LqerError) as caught:
        parse_fractions("train=" + "9" * 5000)  # inf, which would make every share nan
    assert "..." in str(caught.value) and len(str(caught.value)) < 150
    with pytest.raises(LqerError):
        parse_fractions("train=0.8,test=nan")
