"""The public API (`import lqer`): the user's verbs, as a notebook calls them."""

import subprocess
import sys

import pytest

import lqer
from lqer.sample import SAMPLE_DIR

SAMPLE = SAMPLE_DIR / "test"  # bundled P-ADSD validation/ patches, positive/ and negative/


def test_import_lqer_loads_neither_torch_nor_pydantic():
    code = "import sys, lqer; print(sorted({'torch', 'pydantic'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_every_public_name_resolves():
    for name in lqer.__all__:
        assert getattr(lqer, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lqer.nope  # noqa: B018


def test_predict_and_evaluate_agree_with_the_stored_threshold(tmp_path):
    loaded = lqer.load("lqer-padsd")
    assert loaded.kind == "classifier" and 0 < loaded.threshold < 1
    rows = lqer.predict([SAMPLE / "positive"], out=tmp_path / "p.csv")
    assert len(rows) == len(list((SAMPLE / "positive").iterdir()))
    called = [r for r in rows if r["label"] == "stenosis"]
    assert all(r["prob"] >= loaded.threshold for r in called)
    assert (tmp_path / "p.csv").is_file()
    metrics = lqer.evaluate(SAMPLE)
    assert metrics["sensitivity"] == pytest.approx(len(called) / len(rows))
    assert metrics["auc"] > 0.9


def test_fit_takes_overrides(tiny_dataset, tmp_path):
    run = lqer.fit(lqer.ExperimentConfig(), [
        f"data.root={tiny_dataset}", "data.image_size=16", f"out_dir={tmp_path / 'run'}",
        "train.epochs=1", "train.batch_size=16", "train.progress=false", "model.name=cnn",
    ])  # fmt: skip
    assert (run / "best.pt").is_file()
    assert lqer.load(run / "best.pt").config.model.name == "cnn"


def test_compare_defaults_to_every_model_of_the_grid(tmp_path, monkeypatch):
    from lqer.config import ExperimentConfig
    from lqer.experiments.variants import DEFAULT_MODELS

    asked = {}
    monkeypatch.setattr("lqer.experiments.compare.compare",
                        lambda cfg, out, models, seeds: asked.update(models=models))  # fmt: skip
    lqer.compare(ExperimentConfig(), tmp_path / "cmp")
    assert asked["models"] == DEFAULT_MODELS
