"""Shipped weights: a run exported as fp16 safetensors with its thresholds and metadata, and
loaded by name wherever a checkpoint is read."""

import json

import pytest
import torch
from helpers import tiny_config

from lqer.data.dataset import load_folder
from lqer.errors import LqerError
from lqer.eval.evaluate import predict_proba
from lqer.experiments.ship import ship
from lqer.models import weights
from lqer.models.checkpoint import load_checkpoint
from lqer.train import fit


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    from helpers import make_tiny_dataset

    root = tmp_path_factory.mktemp("w")
    data = make_tiny_dataset(root / "data")
    run = fit(tiny_config(data, root / "run", "train.epochs=2"))
    files = ship(run, "tiny", root / "weights", target_sensitivity=0.9, n_boot=200,
                 sites={"tiny-site": data / "validation"})  # fmt: skip
    return run, files, data


def test_export_writes_fp16_safetensors_and_metadata(shipped):
    run, (tensors, info), _ = shipped
    from safetensors import safe_open

    with safe_open(str(tensors), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 (not a dict)
        assert f.metadata()["format"] == "lqer-weights"
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    meta = json.loads(info.read_text())
    assert meta["threshold"]["rule"].startswith("sensitivity >= 0.90 on the hold-out")
    assert meta["metrics"]["hold_out"]["sensitivity"] >= 0.9  # the rule holds where it was set
    assert 0 <= meta["threshold_max_f1"] <= 1
    low, high = meta["metrics"]["test_intervals"]["auc"]
    assert low <= meta["metrics"]["test"]["auc"] <= high
    assert meta["training_data"]["images"] + meta["training_data"]["hold_out"] == 48
    assert meta["test_split"] == "data validation/"
    site = meta["sites"]["tiny-site"]  # the test folder again, as a site: the same figures
    assert site["metrics"] == meta["metrics"]["test"]
    assert site["intervals"]["auc"] == meta["metrics"]["test_intervals"]["auc"]


def test_a_run_without_a_test_split_ships_without_one(shipped, tmp_path):
    _, _, data = shipped
    run = fit(tiny_config(data, tmp_path / "run", "train.epochs=1", "data.test_split=null"))
    _, info = ship(run, "no-test", tmp_path / "weights", n_boot=50)
    meta = json.loads(info.read_text())
    assert "test_split" not in meta and set(meta["metrics"]) == {"hold_out"}


def test_weights_load_by_name_and_predict_like_the_run(shipped, monkeypatch):
    run, (tensors, _), data = shipped
    monkeypatch.setattr(weights, "FOLDER", tensors.parent)
    monkeypatch.setitem(weights.WEIGHTS, "tiny", weights.Weights("tiny", "a test model"))
    model, cfg, meta = load_checkpoint("tiny")
    original, _, _ = load_checkpoint(run / "best.pt")
    images = load_folder(data / "validation", 16).images
    ours, theirs = (predict_proba(m, images, 16) for m in (model, original))
    assert abs(ours - theirs).max() < 5e-3  # fp16 weights, float32 arithmetic
    assert weights.WEIGHTS["tiny"].threshold == meta["threshold"]["value"]
    assert "tiny" in weights.describe() and "threshold" in weights.describe()
    assert f"tiny-site: AUC {meta['sites']['tiny-site']['metrics']['auc']:.3f}" in (
        weights.describe()
    )


def test_missing_weights_are_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "FOLDER", tmp_path)
    weights.WEIGHTS["lqer-padsd"].__dict__.pop("meta", None)
    with pytest.raises(LqerError, match="not in this installation"):
        load_checkpoint("lqer-padsd")


def test_cli_uses_the_stored_threshold_unless_told(shipped, monkeypatch, capsys):
    from helpers import run_cli

    run, (tensors, info), data = shipped
    monkeypatch.setattr(weights, "FOLDER", tensors.parent)
    monkeypatch.setitem(weights.WEIGHTS, "tiny", weights.Weights("tiny", "a test model"))
    stored = json.loads(info.read_text())["threshold"]["value"]
    out = tensors.parent.parent / "eval.json"
    code, text, err = run_cli(monkeypatch, capsys, "evaluate", "--checkpoint", "tiny", "--data",
                              data / "validation", "--out", out, "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert f"threshold {stored:.4g} (stored with tiny: sensitivity >= 0.90" in text
    assert json.loads(out.read_text())["threshold"] == pytest.approx(stored)
    preds = tensors.parent.parent / "p.csv"
    code, text, err = run_cli(monkeypatch, capsys, "predict", data / "validation", "--checkpoint",
                              "tiny", "--out", preds, "--threshold", "0.3")  # fmt: skip
    assert code == 0, err
    assert "threshold 0.3 (as asked)" in text
    code, text, err = run_cli(monkeypatch, capsys, "predict", data / "validation", "--checkpoint",
                              run / "best.pt", "--out", preds.with_name("q.csv"))  # fmt: skip
    stored = load_checkpoint(run / "best.pt")[2]["threshold"]["value"]
    assert f"threshold {stored:.4g} (stored with {run / 'best.pt'}: max F1 on the hold-out" in text


def test_best_f1_threshold_is_the_best_score_as_threshold():
    import numpy as np

    from lqer.eval.metrics import best_f1_threshold, binary_metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(np.round(rng.random(200) * 20) / 20 + 0.3 * labels * rng.random(200), 0, 1)
    f1 = {t: binary_metrics(labels, probs, t)["f1"] for t in np.unique(probs)}
    best = max(f1.values())
    assert best_f1_threshold(labels, probs) == min(t for t, v in f1.items() if v == best)


def test_the_shipped_entry_scores_the_bundled_test_sample():
    import lqer.weights
    from lqer.eval.metrics import binary_metrics
    from lqer.sample import SAMPLE_DIR

    entry = lqer.weights.LQER_PADSD
    model, cfg, meta = entry.loaded()
    test = load_folder(SAMPLE_DIR / "test", cfg.data.image_size)  # from P-ADSD validation/
    probs = predict_proba(model, test.images, cfg.data.image_size)
    scored = binary_metrics(test.labels, probs, entry.threshold)
    assert scored["auc"] > 0.9 and scored["sensitivity"] > 0.8
    assert meta["training_data"]["root"] == "P-ADSD" and "licence" in meta


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "tiny.safetensors: a truncated or damaged weights file"),
        ("threshold", "tiny.json: stored threshold: a threshold must be a number in [0, 1]"),
        ("image_size", "tiny.json: its configuration is not valid here (data.image_size: must"),
        ("json", "tiny.json: not readable JSON"),
    ],
)
def test_damaged_weights_are_not_listed_and_fail_in_one_line(
    shipped, tmp_path, monkeypatch, damage, message
):
    _, (tensors, info), _ = shipped
    folder = tmp_path / "weights"
    folder.mkdir()
    data, meta = tensors.read_bytes(), json.loads(info.read_text())
    if damage == "truncate":  # a download cut short
        data = data[: len(data) // 2]
    elif damage == "threshold":
        meta["threshold"]["value"] = "high"
    elif damage == "image_size":
        meta["config"]["data"]["image_size"] = 32768
    (folder / "tiny.safetensors").write_bytes(data)
    (folder / "tiny.json").write_text("{" if damage == "json" else json.dumps(meta))
    monkeypatch.setattr(weights, "FOLDER", folder)
    monkeypatch.setitem(weights.WEIGHTS, "tiny", weights.Weights("tiny", "a test model"))
    assert not weights.WEIGHTS["tiny"].available
    listed = [line for line in weights.describe().splitlines() if "tiny" in line]
    assert len(listed) == 1 and message in listed[0]
    assert "a test model" not in weights.describe()  # not offered as usable
    with pytest.raises(LqerError) as caught:
        load_checkpoint("tiny")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_weights_entry_gives_the_model_and_transforms_like_torchvision():
    import numpy as np
    from PIL import Image

    import lqer.weights
    from lqer.data.dataset import _decode
    from lqer.eval.evaluate import predict_proba
    from lqer.sample import SAMPLE_DIR

    weights = lqer.weights.LQER_PADSD
    model = weights.load()
    assert isinstance(model, torch.nn.Module) and not model.training
    size = weights.config.data.image_size
    path = sorted((SAMPLE_DIR / "test" / "positive").glob("*.png"))[0]
    expected = predict_proba(model, _decode(path, size, 10**8)[None], size)[0]  # as predict
    preprocess = weights.transforms()
    image = Image.open(path)
    array = np.array(image.convert("L"))  # writable, as torch.from_numpy wants
    as_given = {
        "PIL gray": image, "PIL RGB": image.convert("RGB"), "numpy": array,
        "uint8 (H, W)": torch.from_numpy(array),
        "float (1, H, W)": torch.from_numpy(array)[None] / 255,
    }  # fmt: skip
    for name, given in as_given.items():
        x = preprocess(given)
        assert x.shape == (3, size, size), name
        with torch.no_grad():
            prob = torch.softmax(model(x[None]), 1)[0, 1].item()
        assert prob == pytest.approx(float(expected), abs=1e-5), name
    batch = preprocess(torch.from_numpy(np.stack([array, array]))[:, None])
    assert batch.shape == (2, 3, size, size) and torch.equal(batch[0], preprocess(array))
    with pytest.raises(TypeError, match="1 or 3 channels"):
        preprocess(torch.zeros(2, 2, 8, 8))


def test_ship_site_needs_a_name_and_a_folder(shipped, monkeypatch, capsys, tmp_path):
    from helpers import run_cli

    run = shipped[0]
    code, _, err = run_cli(monkeypatch, capsys, "ship", run, "--name", "x", "--out", tmp_path,
                           "--site", "no-folder")  # fmt: skip
    assert code == 2 and "--site: expected NAME=DIR, got 'no-folder'" in err
    assert not list(tmp_path.iterdir())


def test_ship_refuses_the_detector_flip_for_a_patch_run(shipped, monkeypatch, capsys, tmp_path):
    from helpers import run_cli

    code, _, err = run_cli(monkeypatch, capsys, "ship", shipped[0], "--name", "x", "--out",
                           tmp_path, "--flip")  # fmt: skip
    assert code == 2 and "flip is for whole-frame detectors" in err
    assert not list(tmp_path.iterdir())
