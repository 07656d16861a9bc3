import csv
import json

import pytest
import torch
from helpers import run_cli, tiny_config

from lqer.errors import LqerError
from lqer.train import fit, load_checkpoint


def test_fit_writes_a_complete_run(tiny_dataset, tmp_path):
    run = fit(tiny_config(tiny_dataset, tmp_path / "run"))
    for name in ("config.yaml", "history.csv", "history.jsonl", "best.pt", "last.pt",
                 "test_metrics.json", "test_predictions.csv"):  # fmt: skip
        assert (run / name).is_file(), name
    assert not (run / "tensorboard").exists()  # only when asked (train.tensorboard)
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for column in ("train_loss", "train_auc", "train_f1", "val_loss", "val_auc", "val_f1",
                   "val_sensitivity", "val_specificity", "val_precision", "val_recall_positive",
                   "val_recall_negative", "lr_backbone", "lr_head", "epoch_time"):  # fmt: skip
        assert column in rows[0], column
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert metrics["n"] == 24 and 0 <= metrics["auc"] <= 1
    model, cfg, info = load_checkpoint(run / "best.pt")
    assert cfg.data.image_size == 16 and info["epoch"] in (1, 2)
    # the hold-out chose the threshold with the epoch, and the test split is scored at it
    assert info["threshold"]["rule"] == "max F1 on the hold-out of train/"
    assert metrics["threshold"] == info["threshold"]["value"]


def test_a_hold_out_without_positives_stores_no_threshold():
    import numpy as np

    from lqer.config import DataConfig
    from lqer.train.loop import hold_out_threshold

    probs = np.array([0.2, 0.7, 0.4])
    assert hold_out_threshold(np.zeros(3), probs, DataConfig()) is None
    chosen = hold_out_threshold(np.array([0, 1, 0]), probs, DataConfig(val_split="val"))
    assert chosen == {"value": 0.7, "rule": "max F1 on the val/ split"}


def test_resume_continues_the_same_run(tiny_dataset, tmp_path):
    cfg = tiny_config(tiny_dataset, tmp_path / "run", "train.epochs=1")
    fit(cfg)
    with pytest.raises(LqerError, match="already holds a run"):
        fit(cfg)
    cfg.train.epochs = 2
    run = fit(cfg, resume=True)
    epochs = [json.loads(line)["epoch"] for line in (run / "history.jsonl").open()]
    assert epochs == [1, 2]
    assert load_checkpoint(run / "last.pt")[2]["epoch"] == 2


def test_ema_keeps_the_average_in_best_pt_and_resumes_it(tiny_dataset, tmp_path):
    cfg = tiny_config(tiny_dataset, tmp_path / "run", "train.epochs=1", "train.ema=0.9",
                      "train.select=loss")  # fmt: skip
    run = fit(cfg)
    last = torch.load(run / "last.pt", weights_only=True)
    best = torch.load(run / "best.pt", weights_only=True)
    averaged = {k.removeprefix("module."): v for k, v in last["ema"].items()}
    assert int(averaged.pop("n_averaged")) > 0  # a step at least
    for name, value in best["model"].items():  # best.pt holds the average, not the last step
        torch.testing.assert_close(value, averaged[name])
    moved = [k for k, v in best["model"].items() if v.is_floating_point()
             and not torch.equal(v, last["model"][k])]  # fmt: skip
    assert moved, "the average equals the last step's weights"
    cfg.train.epochs = 2
    fit(cfg, resume=True)
    again = torch.load(run / "last.pt", weights_only=True)["ema"]
    assert int(again["n_averaged"]) > int(last["ema"]["n_averaged"])


def test_training_learns_an_easy_task(tiny_dataset, tmp_path):
    cfg = tiny_config(tiny_dataset, tmp_path / "run", "train.epochs=6", "train.augment=positives",
                      "train.imbalance=balanced", "model.name=resnet18")  # fmt: skip
    run = fit(cfg)
    assert json.loads((run / "test_metrics.json").read_text())["auc"] > 0.8


def test_cli_train_evaluate_predict(tiny_dataset, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(
        monkeypatch, capsys, "train", "--data", tiny_dataset, "--out", tmp_path / "run",
        "--epochs", "1", "--image-size", "16", "--set", "train.progress=false",
    )  # fmt: skip
    assert code == 0, err
    assert "test metrics" in out and "auc" in out
    best = tmp_path / "run" / "best.pt"

    code, out, err = run_cli(
        monkeypatch, capsys, "evaluate", "--checkpoint", best,
        "--data", tiny_dataset / "validation", "--out", tmp_path / "eval.json",
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((tmp_path / "eval.json").read_text())
    for key in ("accuracy", "auc", "f1", "sensitivity", "specificity", "precision",
                "confusion_matrix"):  # fmt: skip
        assert key in metrics
    assert sum(map(sum, metrics["confusion_matrix"])) == 24

    code, out, err = run_cli(
        monkeypatch, capsys, "predict", tiny_dataset / "validation" / "positive",
        tiny_dataset / "validation" / "negative" / "000.png", "--checkpoint", best,
        "--out", tmp_path / "pred.csv",
    )  # fmt: skip
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "pred.csv").open()))
    assert len(rows) == 13 and {"file", "prob_stenosis", "label"} <= set(rows[0])
    assert all(0 <= float(r["prob_stenosis"]) <= 1 for r in rows)


def test_cli_errors_are_one_line(tiny_dataset, tmp_path, monkeypatch, capsys):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    cases = [
        (["evaluate", "--checkpoint", tmp_path / "junk.pt", "--data", tiny_dataset / "train"],
         "junk.pt"),
        (["evaluate", "--checkpoint", tmp_path / "foreign.pt", "--data", tiny_dataset / "train"],
         "not an lqer checkpoint"),
        (["train", "--data", tmp_path / "nowhere", "--out", tmp_path / "r"], "nowhere"),
        (["train", "--set", "train.epochs=lots"], "train.epochs"),
        (["train"], "no data: give a configuration (e.g. -c configs/padsd-cpu.yaml)"),
        (["predict", tmp_path / "none.png", "--checkpoint", tmp_path / "junk.pt"], "none.png"),
    ]  # fmt: skip
    for args, needle in cases:
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2, (args, err)
        assert err.startswith("error: ") and needle in err and err.count("\n") == 1, err
        assert "Traceback" not in err


def test_checkpoint_of_another_format_version(tiny_dataset, tmp_path):
    run = fit(tiny_config(tiny_dataset, tmp_path / "run", "train.epochs=1"))
    state = torch.load(run / "best.pt", weights_only=True)
    state["version"] = 99
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(LqerError, match="version 99"):
        load_checkpoint(tmp_path / "future.pt")
    state["version"] = 1
    state["config"]["model"]["quantum"]["n_qubits"] = 5
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(LqerError, match="do not fit"):
        load_checkpoint(tmp_path / "mismatch.pt")


def test_bf16_on_cpus_with_amx_from_64_px(tiny_dataset, tmp_path, monkeypatch, capsys):
    from lqer import device

    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert device.training_precision(cpu, 64, True, True) == device.Precision(True, True)
    assert device.training_precision(cpu, 32, True, True) == device.Precision(False, False)
    assert device.training_precision(cpu, 64, False, True) == device.Precision(False, True)
    run = fit(tiny_config(tiny_dataset, tmp_path / "run", "data.image_size=64", "train.epochs=1"))
    assert "bf16 autocast and channels_last" in capsys.readouterr().out
    assert json.loads((run / "test_metrics.json").read_text())["n"] == 24
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx2"}))  # an EPYC here
    assert device.training_precision(cpu, 64, True, True) == device.Precision(False, False)


def test_tensorboard_gets_every_epoch(tiny_dataset, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = fit(tiny_config(tiny_dataset, tmp_path / "run", "train.tensorboard=true"))
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "val/auc", "lr/backbone", "lr/head"} <= set(tags), tags
    assert [e.step for e in events.Scalars("val/auc")] == [1, 2]


def test_missing_imagenet_weights_are_reported_before_the_data_is_read(
    tiny_dataset, tmp_path, monkeypatch
):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    def data_read(*args, **kwargs):
        raise AssertionError("the data was read before the weights were checked")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", no_network)
    monkeypatch.setattr("lqer.train.loop.load_experiment", data_read)
    cfg = tiny_config(tiny_dataset, tmp_path / "runs" / "r", "model.weights=imagenet")
    with pytest.raises(LqerError, match="ImageNet weights for ResNet18 could not be loaded"):
        fit(cfg)
    assert not (tmp_path / "runs").exists()  # no empty run folder left behind


def test_finetune_starts_from_the_source_weights_and_refuses_another_model(tiny_dataset, tmp_path):
    from lqer.train.finetune import finetune_config

    source = fit(tiny_config(tiny_dataset, tmp_path / "source", "train.epochs=1")) / "best.pt"
    cfg = finetune_config(source, tiny_dataset, tmp_path / "ft", [
        "train.epochs=1", "train.lr_backbone=0", "train.lr_head=1e-12", "train.progress=false",
        "train.batch_size=16", "train.seed=1"])  # fmt: skip
    assert cfg.data.image_size == 16 and cfg.train.init == str(source)
    tuned, _, _ = load_checkpoint(fit(cfg) / "best.pt")
    start, _, _ = load_checkpoint(source)
    conv = "backbone.conv1.weight"  # the backbone did not move, so it must be the source's
    assert torch.equal(tuned.state_dict()[conv], start.state_dict()[conv])
    other = tiny_config(tiny_dataset, tmp_path / "cnn", "model.name=cnn", f"train.init={source}")
    with pytest.raises(LqerError, match="holds a 'lqer' model; this run trains 'cnn'"):
        fit(other)
    assert not (tmp_path / "cnn").exists()
