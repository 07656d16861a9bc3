"""The near-duplicate audit: exact search, planted duplicates found, regrouping removes leaks."""

import numpy as np
import pytest
import torch
from PIL import Image

from lqer.data.audit import AuditConfig, run_audit, search
from lqer.data.images import load_gray
from lqer.data.split_audit import clusters, exact_duplicates, gather, plot_pairs, regroup, report


def test_blockwise_search_equals_brute_force():
    torch.manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(45, 6), dim=1)
    codes = np.repeat([0, 1, 2], [20, 15, 10])
    best, arg, pairs = search(vectors, codes, 3, min_sim=0.6, block=7)
    sims = (vectors @ vectors.T).numpy()
    np.fill_diagonal(sims, -np.inf)
    for k in range(3):
        cols = np.flatnonzero(codes == k)
        np.testing.assert_allclose(best[:, k], sims[:, cols].max(1), rtol=1e-5)
        np.testing.assert_array_equal(arg[:, k], cols[sims[:, cols].argmax(1)])
    i, j = np.nonzero(np.triu(sims >= 0.6, 1))
    assert sorted(map(tuple, pairs.tolist())) == sorted(zip(i.tolist(), j.tolist(), strict=True))


@pytest.fixture(scope="module")
def planted(datasets_dir, tmp_path_factory):
    """80 real P-ADSD patches for train; for test, 30 of them shifted by a pixel and
    brightened, plus 30 other real patches."""
    root = tmp_path_factory.mktemp("planted")
    for folder in ("train/positive", "train/negative", "test/positive", "test/negative"):
        (root / folder).mkdir(parents=True)
    files = sorted((datasets_dir / "P-ADSD" / "validation" / "positive").glob("*.png"))
    for k, path in enumerate(files[:80]):
        image = load_gray(path)
        Image.fromarray(image).save(root / "train" / "positive" / path.name)
        if k < 30:
            copy = np.clip(np.roll(image.astype(int), 1, axis=1) * 1.1 + 5, 0, 255)
            Image.fromarray(copy.astype(np.uint8)).save(
                root / "test" / "positive" / f"copy_{path.name}"
            )
    for path in files[200:230]:
        Image.fromarray(load_gray(path)).save(root / "test" / "positive" / path.name)
    for split in ("train", "test"):  # one identical flat negative in both
        Image.fromarray(np.full((40, 40), 90, np.uint8)).save(root / split / "negative" / "x.png")
    return root


def test_planted_duplicates_are_found(planted):
    paths, labels, splits = gather({"train": [planted / "train"], "test": [planted / "test"]})
    cfg = AuditConfig(method="both", max_distance=0.35, max_hamming=6)
    audit = run_audit(paths, labels, splits, cfg)
    test = np.flatnonzero(audit.splits == "test")
    copies = np.array(["copy_" in audit.paths[i] for i in test])
    d, _ = audit.nearest("pixel", "test", "train")
    assert (d[copies] <= 0.35).all()
    for method in ("pixel", "phash"):  # the hash is coarser: a 1-pixel shift flips ~2-14 bits
        _, idx = audit.nearest(method, "test", "train")
        sources = [audit.paths[i].rsplit("/", 1)[1] for i in idx[copies]]
        assert sources == [audit.paths[i].rsplit("copy_", 1)[1] for i in test[copies]]
    leaked = audit.leaked("test")
    assert leaked[copies].all()
    assert exact_duplicates(audit, "test") == 1  # the flat negative
    text = report(audit, cfg)
    assert "test images with a near-duplicate in train" in text
    assert f"{leaked.sum()} / {len(test)}" in text


def test_regroup_keeps_clusters_whole_and_removes_the_leak(planted, tmp_path):
    paths, labels, splits = gather({"train": [planted / "train"], "test": [planted / "test"]})
    audit = run_audit(paths, labels, splits, AuditConfig(max_distance=0.35))
    new, groups = regroup(audit, seed=0)
    assert (groups == clusters(audit)).all()
    for g in np.unique(groups):
        assert len(set(new[groups == g])) == 1
    again = run_audit([*map(str, audit.paths)], audit.labels, new, AuditConfig(max_distance=0.35))
    assert not again.leaked("test").any()
    plot_pairs(audit, tmp_path / "pairs.png")
    assert Image.open(tmp_path / "pairs.png").size[0] > 300


def test_auto_threshold_is_the_null_quantile(planted):
    paths, labels, splits = gather({"train": [planted / "train"], "test": [planted / "test"]})
    audit = run_audit(paths, labels, splits, AuditConfig(auto_threshold=True, null_rate=0.05))
    found = audit.found["pixel"]
    assert found.threshold == pytest.approx(np.quantile(found.null, 0.05))


def test_cli_audit_writes_the_regrouped_split(planted, tmp_path):
    from typer.testing import CliRunner

    from lqer.cli.data import app
    from lqer.data.layout import read_split_file

    out = tmp_path / "regrouped.csv"
    args = ["audit", "--train", str(planted / "train"), "--test", str(planted / "test")]
    result = CliRunner().invoke(
        app, [*args, "--regroup", str(out), "--pairs", str(tmp_path / "p.png")]
    )
    assert result.exit_code == 0, result.output
    assert "clusters of near-duplicates" in result.output
    assert sum(len(v) for v in read_split_file(out).values()) == 80 + 60 + 2


def test_the_audit_workflow_is_a_library_call(planted, tmp_path):
    from lqer.data.layout import read_split_file
    from lqer.data.split_audit import audit_splits
    from lqer.errors import LqerError

    folders = {"train": [planted / "train"], "test": [planted / "test"]}
    out = tmp_path / "regrouped.csv"
    audit, text = audit_splits(folders, regroup_to=out)
    assert "clusters of near-duplicates" in text and str(out) in text
    regrouped = read_split_file(out)
    assert sum(map(len, regrouped.values())) == len(audit.paths)
    with pytest.raises(LqerError, match="^`regroup_to`: .* lies inside"):
        audit_splits(folders, regroup_to=planted / "train" / "positive" / "x.csv")
    with pytest.raises(LqerError, match="^give `split_file` or split folders, not both"):
        audit_splits(folders, split_file=out)
