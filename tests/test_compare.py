"""`lqer compare` and `lqer report` end to end on a few dozen real A-DSSS patches."""

import json

import pytest
import typer
from typer.testing import CliRunner

from lqer.cli.compare import register
from lqer.config import load_config
from lqer.errors import LqerError
from lqer.experiments import compare, report
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
    assert manifest["data"]["0"]["splits"]["test"]["positives"] >= 2
    summary = compare.read_csv(comparison / "summary.csv")
    models = {r["model"] for r in summary}
    assert models == {"lqer", "lqer (q=zeros)", "lqer (q=shuffle)", "cnn"}
    assert {r["rule"] for r in summary} == set(compare.rules(0.9))
    assert {r["metric"] for r in summary} == set(compare.METRICS)
    assert all(r["n_seeds"] == 2 for r in summary)
    results = compare.read_csv(comparison / "results.csv")
    chosen = [r for r in results if r["rule"] == compare.rules(0.9)[0] and r["metric"] == "auc"]
    assert all(0 < r["threshold"] < 1 for r in chosen)  # from validation, not 0.5
    delong = compare.read_csv(comparison / "delong.csv")
    assert len(delong) == 2 * 3 and all(0 <= r["p"] <= 1 for r in delong)
    markdown = (comparison / "results.md").read_text()
    assert "| cnn | 2 |" in markdown and "Paired DeLong" in markdown


def test_finished_runs_are_reused_and_a_failed_run_is_reported(comparison, base, monkeypatch):
    def broken(cfg):
        raise RuntimeError("deliberately broken model")

    monkeypatch.setitem(MODELS, "qcnn", broken)
    before = (comparison / "summary.csv").read_text()
    compare.compare(base, comparison, ["lqer", "cnn", "qcnn"], seeds=[0, 1], n_boot=100)
    runs = json.loads((comparison / "comparison.json").read_text())["runs"]
    status = {(r["model"], r["seed"]): r["status"] for r in runs}
    assert status[("lqer", 0)] == status[("cnn", 1)] == "reused"
    assert status[("qcnn", 0)] == status[("qcnn", 1)] == "failed"
    assert "deliberately broken" in runs[-1]["error"]
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
    [pred] = compare.run_predictions(run, "cnn", 0, data, "cpu")
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
    none = report.circuit_verdict([])
    assert none.startswith("No ablation")
    same = report.circuit_verdict(
        [contrast("lqer-classical", 0.002, -0.01, 0.014), contrast("resnet18", -0.01, -0.03, 0.01)]
    )
    assert same.startswith("On this data the circuit made no measurable difference")
    assert "-0.002" in same  # the ablation's change in AUC: AUC(ablation) - AUC(lqer)
    better = report.circuit_verdict([contrast("lqer-classical", 0.05, 0.02, 0.08)])
    assert "made a measurable difference" in better
    mixed = report.circuit_verdict(
        [contrast("lqer-frozen", 0.05, 0.02, 0.08), contrast("lqer (q=zeros)", 0, -0.005, 0.005)]
    )
    assert mixed.startswith("The evidence is mixed")
    assert "does not use q" in mixed
    tiny = report.circuit_verdict([contrast("lqer (q=shuffle)", 0.0004, 0.0001, 0.0008)])
    assert "no measurable difference" in tiny  # significant, but below the AUC margin
    used = report.circuit_verdict([contrast("lqer (q=zeros)", 0.05, 0.02, 0.08)])
    assert "does not use q" not in used
