"""`lqer compare` and `lqer report` end to end on a few dozen real A-DSSS patches."""

import json

import numpy as np
import pytest
import torch
import typer
import yaml
from typer.testing import CliRunner

from lqer.cli.compare import register
from lqer.config import load_config
from lqer.errors import LqerError
from lqer.eval import metrics
from lqer.experiments import (
    compare,
    pooling,
    report,
    report_sections,
    runs,
    statistics,
    tables,
    variants,
)
from lqer.models import MODELS


@pytest.fixture(scope="module")
def base(datasets_dir):
    return load_config(None, [
        f"data.root={datasets_dir / 'A-DSSS'}", "data.fold=0", "data.limit=40",
        "data.image_size=32", "train.epochs=1", "train.batch_size=16",
        "train.progress=false", "train.device=cpu",
    ])  # fmt: skip


@pytest.fixture(scope="module")
def comparison(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("comparison")
    return compare.compare(base, out, ["cnn", "lqer"], seeds=[0, 1], n_boot=100)


def test_compare_writes_tables_for_models_ablations_and_delong(comparison):
    manifest = json.loads((comparison / "comparison.json").read_text())
    assert manifest["models"] == ["lqer", "cnn"]  # the DeLong reference first
    assert [r["status"] for r in manifest["runs"]] == ["trained"] * 4
    assert all(r["device"].startswith("CPU: ") for r in manifest["runs"])
    assert manifest["data"]["0"]["splits"]["test"]["positives"] >= 2
    summary = tables.read_csv(comparison / "summary.csv")
    models = {r["model"] for r in summary}
    assert models == {"lqer", "lqer (q=zeros)", "lqer (q=shuffle)", "cnn"}
    assert {r["rule"] for r in summary} == set(statistics.rules(0.9))
    assert {r["metric"] for r in summary} == set(variants.METRICS)
    assert all(r["n_seeds"] == 2 for r in summary)
    results = tables.read_csv(comparison / "results.csv")
    chosen = [r for r in results if r["rule"] == statistics.rules(0.9)[0] and r["metric"] == "auc"]
    assert all(0 < r["threshold"] < 1 for r in chosen)  # from validation, not 0.5
    delong = tables.read_csv(comparison / "delong.csv")
    assert len(delong) == 2 * 3 and all(0 <= r["p"] <= 1 for r in delong)
    markdown = (comparison / "results.md").read_text()
    assert "| cnn | 2 |" in markdown and "Paired DeLong" in markdown


def test_finished_runs_are_reused_and_a_failed_run_is_reported(
    comparison, base, monkeypatch, capsys
):
    def broken(**arguments):
        raise RuntimeError("deliberately broken model")

    monkeypatch.setitem(MODELS, "qcnn", broken)
    before = (comparison / "summary.csv").read_text()
    trained = json.loads((comparison / "comparison.json").read_text())["runs"]
    compare.compare(base, comparison, ["lqer", "cnn", "qcnn"], seeds=[0, 1], n_boot=100)
    records = json.loads((comparison / "comparison.json").read_text())["runs"]
    status = {(r["model"], r["seed"]): r["status"] for r in records}
    assert status[("lqer", 0)] == status[("cnn", 1)] == "reused"
    said = capsys.readouterr().out  # which run it is working on, and what became of it
    assert "run 1 of 6: lqer, seed 0, in " in said and "lqer seed 0: reused" in said
    assert status[("qcnn", 0)] == status[("qcnn", 1)] == "failed"
    device = {(r["model"], r["seed"]): r.get("device") for r in records}
    assert all(device[(r["model"], r["seed"])] == r["device"] for r in trained)  # kept
    assert device[("qcnn", 0)] is None  # it trained nothing
    assert "deliberately broken" in records[-1]["error"]
    assert "FAILED: qcnn seed 0" in (comparison / "results.md").read_text()
    assert (comparison / "summary.csv").read_text() == before  # same runs, same numbers


def test_report_of_a_comparison_and_of_a_run(comparison):
    runner = CliRunner()
    app = typer.Typer()
    register(app)
    result = runner.invoke(app, ["report", str(comparison)])
    assert result.exit_code == 0, result.output
    page = (comparison / "report" / "report.html").read_text()
    markdown = (comparison / "report" / "report.md").read_text()
    assert page.count("data:image/png;base64,") >= 6  # figs 1-4, ROC, reliability
    for text in ("Reference rows", "0.987", "0.9543", "sha256", "Does the circuit", "torch"):
        assert text in page and text in markdown
    assert "fig1_models.png" in markdown
    assert "out_dir:" not in markdown  # each run's own folder, not a stale one
    assert (comparison / "report" / "figures" / "fig1_models.svg").stat().st_size > 10_000
    html_run, _ = report.write_report(comparison / "runs" / "lqer-seed0")
    assert "data:image/png;base64," in html_run.read_text()


def test_the_test_split_is_scored_once_by_the_run(comparison, base, tmp_path, monkeypatch):
    import shutil
    from dataclasses import replace

    from lqer.data.dataset import load_experiment
    from lqer.eval import evaluate, predictions

    run = shutil.copytree(comparison / "runs" / "cnn-seed0", tmp_path / "run")
    (run / "predictions.csv").unlink()
    marked = [
        replace(r, prob=0.25) for r in predictions.read_predictions(run / "test_predictions.csv")
    ]
    predictions.write_predictions(run / "test_predictions.csv", marked)
    scored = []
    score = evaluate.predict_proba
    monkeypatch.setattr(evaluate, "predict_proba", lambda *a: scored.append(a) or score(*a))
    data = load_experiment(base.data, 0)
    [pred] = variants.run_predictions(run, "cnn", 0, data, "cpu")
    assert len(scored) == 1 and len(scored[0][1]) == len(data["val"])  # validation alone
    assert pred.test_probs.tolist() == [0.25] * len(data["test"])


def test_unknown_model_is_a_user_error(tmp_path):
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["compare", "--out", str(tmp_path), "--models", "nope"])
    assert isinstance(result.exception, LqerError) and "nope" in str(result.exception)


def contrast(model, diff, low, high):
    return {"model": model, "n_seeds": 5, "auc_difference": diff, "low": low, "high": high,
            "seeds_p_below_0.05": 0, "p_values": ""}  # fmt: skip


def test_verdict_follows_the_numbers():
    none = report_sections.circuit_verdict([])
    assert none.startswith("No ablation")
    same = report_sections.circuit_verdict(
        [contrast("lqer-classical", 0.002, -0.01, 0.014), contrast("resnet18", -0.01, -0.03, 0.01)]
    )
    assert same.startswith("On this data the circuit made no measurable difference")
    assert "-0.002" in same  # the ablation's change in AUC: AUC(ablation) - AUC(lqer)
    better = report_sections.circuit_verdict([contrast("lqer-classical", 0.05, 0.02, 0.08)])
    assert "made a measurable difference" in better
    mixed = report_sections.circuit_verdict(
        [contrast("lqer-frozen", 0.05, 0.02, 0.08), contrast("lqer (q=zeros)", 0, -0.005, 0.005)]
    )
    assert mixed.startswith("The evidence is mixed")
    assert "does not use q" in mixed
    tiny = report_sections.circuit_verdict([contrast("lqer (q=shuffle)", 0.0004, 0.0001, 0.0008)])
    assert "no measurable difference" in tiny  # significant, but below the AUC margin
    used = report_sections.circuit_verdict([contrast("lqer (q=zeros)", 0.05, 0.02, 0.08)])
    assert "does not use q" not in used


# ----------------------------------------------------------------------------- artifacts


def tiny_base(root, *extra):
    return load_config(None, [
        f"data.root={root}", "data.image_size=16", "train.epochs=1", "train.batch_size=16",
        "train.progress=false", "train.device=cpu", "train.lr_backbone=1e-3",
        "train.lr_head=1e-2", *extra,
    ])  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A finished comparison on the tiny synthetic set: lqer (three variants) and cnn, seed 0."""
    from helpers import make_tiny_dataset

    root = tmp_path_factory.mktemp("tiny")
    base = tiny_base(make_tiny_dataset(root / "data"))
    return base, compare.compare(base, root / "comparison", ["lqer", "cnn"], seeds=[0], n_boot=50)


def copy_of(tiny, tmp_path):
    import shutil

    return shutil.copytree(tiny[1], tmp_path / "comparison")


def never(*args, **kwargs):
    raise AssertionError("called although every run had finished")


def test_a_finished_run_is_reused_from_its_files_without_checkpoints(tiny, tmp_path, monkeypatch):
    import lqer.train.loop

    base, out = tiny[0], copy_of(tiny, tmp_path)
    ignored = [*out.rglob("*.pt"), *out.rglob("test_predictions.csv")]  # not committed
    assert {p.name for p in ignored} == {"best.pt", "last.pt", "test_predictions.csv"}
    for path in ignored:
        path.unlink()
    before = (out / "summary.csv").read_text()
    monkeypatch.setattr(lqer.train.loop, "fit", never)  # no training
    monkeypatch.setattr(runs, "load_experiment", never)  # and no decoding
    compare.compare(base, out, ["lqer", "cnn"], seeds=[0], n_boot=50)
    manifest = json.loads((out / "comparison.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["reused", "reused"]
    assert manifest["data"]["0"]["splits"]["test"]["n"] == 24  # kept from the first call
    assert (out / "summary.csv").read_text() == before


def test_a_run_saved_before_a_setting_existed_is_reused(tiny, tmp_path, monkeypatch):
    import lqer.train.loop

    base, out = tiny[0], copy_of(tiny, tmp_path)
    for config in out.glob("runs/*/config.yaml"):  # as written by an lqer without the setting
        saved = yaml.safe_load(config.read_text())
        del saved["model"]["projection_norm"]
        config.write_text(yaml.safe_dump(saved))
    monkeypatch.setattr(lqer.train.loop, "fit", never)
    compare.compare(base, out, ["lqer", "cnn"], seeds=[0], n_boot=50)
    manifest = json.loads((out / "comparison.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["reused", "reused"]
    # a saved setting that differs is another configuration, and trains again
    other = base.replace(model=base.model.replace(projection_norm="batch"))
    assert not runs._matches(saved, other.replace(out_dir=saved["out_dir"]))


def test_saved_results_without_a_variant_or_a_checkpoint_are_a_clear_error(tiny, tmp_path):
    base, out = tiny[0], copy_of(tiny, tmp_path)
    run = out / "runs" / "lqer-seed0"
    for path in [*run.glob("*.pt"), run / "predictions_q-shuffle.csv"]:
        path.unlink()
    cfg = runs.run_config(base, "lqer", 0, out)
    with pytest.raises(LqerError) as error:
        runs.ensure_trained(cfg, never)
    message = str(error.value)
    assert "\n" not in message and str(run) in message and "predictions_q-shuffle.csv" in message
    compare.compare(base, out, ["lqer", "cnn"], seeds=[0], n_boot=50)
    records = json.loads((out / "comparison.json").read_text())["runs"]
    assert records[0]["status"] == "failed" and "predictions_q-shuffle.csv" in records[0]["error"]
    assert not records[0]["in_tables"] and records[1]["in_tables"]  # cnn alone
    assert {r["model"] for r in tables.read_csv(out / "summary.csv")} == {"cnn"}


def test_pieces_run_apart_merge_into_one_comparison(tiny, tmp_path):
    base, out = tiny[0], copy_of(tiny, tmp_path)
    compare.compare(base, out, ["cnn"], seeds=[1], n_boot=50)  # another day: a second seed
    manifest = json.loads((out / "comparison.json").read_text())
    assert manifest["models"] == ["cnn"] and manifest["seeds"] == [1]  # what was asked
    assert manifest["tables"] == {"models": ["lqer", "cnn"], "seeds": [0, 1]}
    found = {(r["model"], r["seed"]): (r["status"], r["asked"]) for r in manifest["runs"]}
    assert found == {
        ("cnn", 1): ("trained", True), ("lqer", 0): ("reused", False),
        ("cnn", 0): ("reused", False),
    }  # fmt: skip
    assert set(manifest["data"]) == {"0", "1"}
    summary = tables.read_csv(out / "summary.csv")
    seeds = {r["model"]: r["n_seeds"] for r in summary}
    assert seeds == {"lqer": 1, "lqer (q=zeros)": 1, "lqer (q=shuffle)": 1, "cnn": 2}
    results = tables.read_csv(out / "results.csv")
    assert {r["seed"] for r in results if r["model"] == "cnn"} == {0, 1}
    assert len(tables.read_csv(out / "delong.csv")) == 3  # seed 0 alone has lqer


def test_folds_are_comparisons_of_their_own(tmp_path):
    from helpers import make_tiny_dataset

    for k in (0, 1):
        make_tiny_dataset(tmp_path / "data" / f"fold{k}")
    app = typer.Typer()
    register(app)
    args = ["compare", "--out", str(tmp_path / "out"), "--models", "cnn", "--seeds", "0",
            "--folds", "0,1", "--n-boot", "50"]  # fmt: skip
    sets = [f"data.root={tmp_path / 'data'}", "data.image_size=16", "train.epochs=1",
            "train.batch_size=16", "train.progress=false", "train.device=cpu"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, *(x for s in sets for x in ("--set", s))])
    assert result.exit_code == 0, result.output
    for k in (0, 1):
        folder = tmp_path / "out" / f"fold{k}"
        assert load_config(folder / "config.yaml").data.fold == k
        assert load_config(folder / "runs" / "cnn-seed0" / "config.yaml").data.fold == k
        assert (folder / "results.md").exists()
    assert str(tmp_path / "out" / "fold1" / "results.md") in result.output
    rows = pooling.summary_rows("A-DSSS", [tmp_path / "out" / "fold0", tmp_path / "out" / "fold1"])
    assert [(r["model"], r["seeds"], r["n_test"]) for r in rows] == [("cnn", 2, 24)]


def test_summary_rows_have_the_published_columns_and_match_the_tables(tiny):
    rows = pooling.summary_rows("tiny", [tiny[1]])
    assert all(tuple(r) == pooling.SUMMARY_COLUMNS for r in rows)
    assert pooling.SUMMARY_COLUMNS == (
        "dataset", "model", "seeds", "n_train", "n_test", "auc_mean", "auc_sd", "auc_low",
        "auc_high", "accuracy_mean", "f1_mean", "delong_p_vs_lqer",
    )  # fmt: skip
    by_model = {r["model"]: r for r in rows}
    assert list(by_model) == ["lqer", "lqer (q=zeros)", "lqer (q=shuffle)", "cnn"]
    assert (
        by_model["lqer"]["delong_p_vs_lqer"] == "" and 0 <= by_model["cnn"]["delong_p_vs_lqer"] <= 1
    )
    assert by_model["cnn"]["n_test"] == 24 and by_model["cnn"]["n_train"] > 0
    chosen = statistics.rules(0.9)[0]
    summary = {
        (r["model"], r["metric"]): r
        for r in tables.read_csv(tiny[1] / "summary.csv")
        if r["rule"] == chosen
    }
    for model, row in by_model.items():
        assert row["auc_mean"] == pytest.approx(summary[model, "auc"]["mean"], abs=1e-4)
        assert row["auc_low"] == pytest.approx(summary[model, "auc"]["low"], abs=1e-4)
        assert row["f1_mean"] == pytest.approx(summary[model, "f1"]["mean"], abs=1e-4)


def test_twin_rows_test_each_circuit_against_its_classical_twin(tiny, monkeypatch):
    import dataclasses

    from lqer.models import MODELS

    assert MODELS["lqer"].twin == "lqer-classical"
    assert MODELS["lqer-dressed"].twin == "classical-dressed"
    assert pooling.twin_rows("tiny", [tiny[1]]) == []  # tiny has no lqer-classical run
    monkeypatch.setitem(MODELS, "lqer", dataclasses.replace(MODELS["lqer"], twin="cnn"))
    [row] = pooling.twin_rows("tiny", [tiny[1]])
    [delong] = [r for r in tables.read_csv(tiny[1] / "delong.csv") if r["model"] == "cnn"]
    assert (row["model"], row["twin"], row["runs"]) == ("lqer", "cnn", 1)
    assert row["p_pooled"] == pytest.approx(delong["p"], rel=1e-2)
    assert row["auc_difference"] == pytest.approx(delong["difference"], abs=1e-4)
    significant = int(delong["p"] < 0.05)
    better = "runs_model_better" if delong["difference"] > 0 else "runs_twin_better"
    assert row[better] == significant
    assert row["runs_model_better"] + row["runs_twin_better"] == significant


def test_stouffer_pools_the_seeds_z_values():
    z, p = metrics.stouffer([1.0, 1.0, 1.0, 1.0])
    assert z == pytest.approx(2.0) and p == pytest.approx(0.0455, abs=1e-4)
    assert metrics.stouffer([1.5, -1.5]) == (0.0, 1.0)


def test_collect_writes_results_summary_csv(tiny, tmp_path):
    import importlib.util
    import shutil

    from helpers import REPO

    spec = importlib.util.spec_from_file_location("collect", REPO / "results" / "collect.py")
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    shutil.copytree(tiny[1], tmp_path / "grid" / "padsd")
    rows = collect.collect(tmp_path)
    lines = (tmp_path / "summary.csv").read_text().splitlines()
    assert lines[0] == ",".join(pooling.SUMMARY_COLUMNS)
    assert len(lines) == 1 + len(rows) == 5 and all(r["dataset"] == "P-ADSD" for r in rows)


def test_grid_sh_runs_one_piece(tmp_path):
    import os
    import subprocess

    from helpers import REPO

    env = {**os.environ, "DRY_RUN": "1"}
    run = subprocess.run(
        ["bash", "results/grid.sh", "padsd", "lqer,resnet18", "0,1"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    [call, report_call] = run.stdout.splitlines()
    assert call.startswith(
        "+ lqer compare --config configs/padsd.yaml --out results/grid/padsd "
        "--models lqer,resnet18 --seeds 0,1 --set model.weights=none"
    )
    assert "--set train.epochs=10" in call and report_call == "+ lqer report results/grid/padsd"
    folds = subprocess.run(
        ["bash", "results/grid.sh", "adsss", "cnn", "0", "0,1"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert folds[0].endswith("--folds 0,1") and folds[2] == "+ lqer report results/grid/adsss/fold1"


def test_the_shuffle_ablation_mixes_classes_in_its_batches():
    images = torch.cat([torch.zeros(256, 1, 4, 4), torch.ones(256, 1, 4, 4)]).to(torch.uint8)
    batches = []

    def score(x):  # records each batch of 128, as predict_proba would run them
        for start in range(0, len(x), 128):
            batches.append(x[start : start + 128].float().mean().item())
        return x.float().mean((1, 2, 3)).numpy()

    torch.manual_seed(0)
    probs = variants.in_random_order(score, images)
    np.testing.assert_array_equal(probs, images.float().mean((1, 2, 3)).numpy())  # in order
    assert all(0.3 < share < 0.7 for share in batches)  # every batch holds both classes


def test_pieces_running_side_by_side_keep_each_others_records(tiny, tmp_path, monkeypatch):
    base, out = tiny[0], copy_of(tiny, tmp_path)
    train_all = runs.train_all

    def beside(*args):  # another piece, started later, ends while this one trains
        monkeypatch.setattr(compare, "train_all", train_all)
        compare.compare(base, out, ["cnn"], seeds=[2], n_boot=50)
        return train_all(*args)

    monkeypatch.setattr(compare, "train_all", beside)
    compare.compare(base, out, ["cnn"], seeds=[1], n_boot=50)
    manifest = json.loads((out / "comparison.json").read_text())
    device = {(r["model"], r["seed"]): r.get("device") for r in manifest["runs"]}
    assert device[("cnn", 1)] and device[("cnn", 2)]  # the other piece's run keeps its CPU
    assert set(manifest["data"]) == {"0", "1", "2"}


def test_a_model_near_chance_is_flagged_before_the_verdict():
    rows = [{"model": "lqer", "metric": "auc", "mean": "0.53"},
            {"model": "resnet18", "metric": "auc", "mean": "0.91"},
            {"model": "lqer", "metric": "accuracy", "mean": "0.40"}]  # fmt: skip
    warning = report_sections.near_chance(rows)
    assert warning.startswith("Warning: test AUC near chance (0.5) for lqer 0.53.")
    assert "resnet18" not in warning
    assert report_sections.near_chance(rows[1:]) == ""
    ablated = {"model": "lqer-dressed (q=zeros)", "metric": "auc", "mean": "0.50"}
    assert report_sections.near_chance([*rows[1:], ablated]) == ""  # the ablation worked
