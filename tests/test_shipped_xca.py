"""The shipped multi-site patch model `lqer-xca`: listed with both thresholds and its sites'
metrics, the default of `lqer serve` only while it is at least as good as `lqer-padsd` on P-ADSD
`validation/`, and taken by predict, evaluate, explain and export."""

import json
import shutil

from helpers import run_lqer

from lqer.models import PATCH_MODEL, SERVE_MODEL
from lqer.models.weights import WEIGHTS

ENTRY = WEIGHTS["lqer-xca"]


def test_it_is_listed_with_both_thresholds_and_each_sites_interval():
    assert ENTRY.problem() is None, ENTRY.problem()
    meta = ENTRY.meta
    assert meta["threshold"]["rule"] == "sensitivity >= 0.90 on the hold-out of train/"
    assert meta["metrics"]["hold_out"]["sensitivity"] >= 0.90  # the rule holds where it was set
    assert 0 < meta["threshold"]["value"] < meta["threshold_max_f1"] < 1
    assert "test_split" not in meta  # its training sources' held-aside parts are sites instead
    for site in ("P-ADSD-validation", "ARCADE-val-patches", "A-DSSS-fold0"):
        low, high = meta["sites"][site]["intervals"]["auc"]
        assert low <= meta["sites"][site]["metrics"]["auc"] <= high, site
    assert "lqer-xca" in run_lqer("models").stdout


def test_serve_takes_it_only_while_it_is_as_good_as_lqer_padsd_on_padsd_validation():
    assert SERVE_MODEL == "lqer-xca" and PATCH_MODEL == "lqer-padsd"
    padsd = WEIGHTS[PATCH_MODEL].meta
    assert padsd["test_split"] == "P-ADSD validation/"
    xca = ENTRY.meta["sites"]["P-ADSD-validation"]
    assert xca["folder"].endswith("P-ADSD/validation")
    assert xca["metrics"]["auc"] >= padsd["metrics"]["test"]["auc"]
    assert "[default: lqer-xca]" in run_lqer("serve", "--help").stdout


def test_predict_evaluate_explain_and_export_take_it(datasets_dir, tmp_path):
    data = tmp_path / "patches"
    for label in ("positive", "negative"):
        files = sorted((datasets_dir / "P-ADSD" / "validation" / label).iterdir())[:3]
        (data / label).mkdir(parents=True)
        for f in files:
            shutil.copy(f, data / label / f.name)
    patch = next((data / "positive").iterdir())
    model = ("--checkpoint", "lqer-xca")
    for args in (
        ("predict", str(data), *model, "--out", str(tmp_path / "p.csv")),
        ("evaluate", "--data", str(data), *model, "--out", str(tmp_path / "m.json"), "--tta"),
        ("explain", str(patch), *model, "--out", str(tmp_path / "cam")),
        ("export", *model, "--out", str(tmp_path / "xca.onnx"), "--data", str(data)),
    ):
        done = run_lqer(*args, timeout=600)
        assert done.returncode == 0, (args[0], done.stderr)
    assert json.loads((tmp_path / "m.json").read_text())["n"] == 6
    assert (tmp_path / "xca.onnx").stat().st_size > 1_000_000
