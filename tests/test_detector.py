"""The whole-frame detector: twins of equal size, a tiny training run on real ARCADE frames that
resumes, and `lqer scan` with its checkpoint scored against ARCADE's polygons."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from helpers import run_lqer

from lqer.data.frame_sets import load_frame_sets
from lqer.detection_config import DetectionConfig, load_detection_config
from lqer.errors import LqerError
from lqer.models.detector import (
    build_detector,
    detect,
    load_detector,
    mirror_merged,
    save_detector,
)
from lqer.train.detector import fit_detector, regression_died, warmup_schedule


def sizes(cfg) -> dict[str, int]:
    return {
        head: sum(
            p.numel()
            for p in build_detector(
                **{**cfg.detector_arguments(), "head": head, "input_size": 64}
            ).parameters()
        )
        for head in ("none", "lqer", "classical")
    }


def test_the_circuit_head_and_its_twin_have_the_same_size():
    counts = sizes(load_detection_config())
    assert counts["lqer"] == counts["classical"] > counts["none"]


def test_the_box_classifier_reads_q_at_every_location():
    arguments = {**load_detection_config().detector_arguments(), "input_size": 64}
    model = build_detector(**arguments).eval()
    logits = model.head.classification_head.cls_logits
    features = torch.randn(2, 256, 8, 8)
    with torch.no_grad():
        full = logits(features)
        logits.read_q.weight.zero_()  # without q, only FCOS's own convolution is left
        alone = logits(features)
    assert full.shape == (2, 2, 8, 8) and not torch.allclose(full, alone)


def rates(warmup_steps: int, epochs: int = 4, steps_per_epoch: int = 2) -> list[list[float]]:
    """The rates of two parameter groups before every optimizer step, as training sets them."""
    optimizer = torch.optim.AdamW([{"params": [torch.zeros(1)], "lr": 1e-3},
                                   {"params": [torch.zeros(1)], "lr": 1e-2}])  # fmt: skip
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    warmup = warmup_schedule(optimizer, warmup_steps)
    seen = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            seen.append([g["lr"] for g in optimizer.param_groups])
            optimizer.step()
            if warmup is not None:
                warmup.step()
        cosine.step()
    return seen


def test_warmup_scales_the_cosine_from_a_thousandth_to_one_over_its_steps():
    plain, warmed = rates(0), rates(3)
    for step, (a, b) in enumerate(zip(plain, warmed, strict=True)):
        factor = min(1.0, 1e-3 + step * (1 - 1e-3) / 3)
        assert b == pytest.approx([factor * x for x in a], rel=1e-6)
    assert warmed[0][1] == pytest.approx(1e-5) and np.allclose(warmed[3:], plain[3:], rtol=1e-9)


def test_a_box_regression_pushed_below_zero_is_recognised_as_dead():
    model = build_detector(input_size=64, head="none", min_score=0.0)
    images = torch.randint(0, 255, (2, 64, 64), dtype=torch.uint8)
    scales = torch.ones(2, 2)
    regression = model.head.regression_head.bbox_reg
    with torch.no_grad():
        regression.weight.zero_()
        regression.bias.fill_(1.0)  # every side one anchor away: boxes with an area
        alive = detect(model, images, scales)
        regression.bias.fill_(-1.0)  # ReLU: every side at 0, and no gradient to move it
        dead = detect(model, images, scales)
    assert alive[0] and dead[0]
    assert not regression_died(alive) and regression_died(dead) and not regression_died([[], []])


def test_a_detector_saved_before_warmup_existed_trained_without_it():
    values = DetectionConfig().to_dict()
    del values["train"]["warmup_steps"]
    assert DetectionConfig.from_saved(values).train.warmup_steps == 0
    assert DetectionConfig().train.warmup_steps == 100
    kept = DetectionConfig().replace(train=DetectionConfig().train.replace(warmup_steps=7))
    assert DetectionConfig.from_saved(kept.to_dict()).train.warmup_steps == 7


@pytest.fixture(scope="module")
def arcade(datasets_dir):
    return datasets_dir / "ARCADE-stenosis"


def tiny(arcade, out, *more):
    return load_detection_config(None, [
        f"data.root={arcade}", "data.limit=8", "data.input_size=64", "train.epochs=1",
        "train.batch_size=4", "train.progress=false", f"out_dir={out}", *more,
    ])  # fmt: skip


def test_the_flip_maps_mirrored_boxes_back_and_keeps_one_of_each_finding():
    plain = {"boxes": torch.tensor([[10.0, 10, 20, 20]]), "scores": torch.tensor([0.9])}
    mirrored = {  # the same stenosis seen in the mirror, and one only the mirror found
        "boxes": torch.tensor([[80.0, 10, 90, 20], [0, 0, 10, 10]]),
        "scores": torch.tensor([0.8, 0.7]),
    }
    merged = mirror_merged(plain, mirrored, width=100, limit=50)
    assert merged["boxes"].tolist() == [[10, 10, 20, 20], [90, 0, 100, 10]]
    assert merged["scores"].tolist() == pytest.approx([0.9, 0.7])
    assert len(mirror_merged(plain, mirrored, width=100, limit=1)["scores"]) == 1


def test_training_frames_never_repeat_a_test_or_validation_frame(arcade):
    sets = load_frame_sets(tiny(arcade, "x").data.replace(limit=None, input_size=16), seed=0)
    train, val, test = sets["train"], sets["val"], sets["test"]
    assert "218" not in train.ids  # pixel for pixel ARCADE's val 58 (the dataset README)
    assert not set(train.digests) & (set(val.digests) | set(test.digests))
    assert len(train) + len(val) == 999 and len(test) == 200
    assert sum(len(b) for b in test.boxes) == 406


@pytest.fixture(scope="module")
def run(arcade, tmp_path_factory):
    return fit_detector(tiny(arcade, tmp_path_factory.mktemp("detector") / "run"))


def test_a_tiny_run_trains_resumes_and_refuses_other_settings(run, arcade, tmp_path):
    names = {p.name for p in run.iterdir()}
    assert {"best.pt", "last.pt", "history.csv", "config.yaml", "test_metrics.json"} <= names
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert set(metrics["froc"]) == {"0.25", "0.5", "1", "2", "4", "8"} and "ap50" in metrics
    copy = shutil.copytree(run, tmp_path / "run")
    fit_detector(tiny(arcade, copy, "train.epochs=2"), resume=True)
    rows = (copy / "history.jsonl").read_text().splitlines()
    assert [json.loads(row)["epoch"] for row in rows] == [1, 2]
    with pytest.raises(LqerError, match="other settings"):
        fit_detector(tiny(arcade, copy, "train.epochs=3", "model.head=classical"), resume=True)
    with pytest.raises(LqerError, match="already holds a detector run"):
        fit_detector(tiny(arcade, copy, "train.epochs=3"))


def test_scan_with_a_detector_scores_frames_against_polygons(run, arcade, tmp_path):
    frames = [str(arcade / "val" / "images" / f"{k}.png") for k in (1, 2)]
    out = tmp_path / "scan"
    result = run_lqer("scan", *frames, "--checkpoint", str(run / "best.pt"), "--annotations",
                      str(arcade / "val" / "annotations" / "val.json"), "--format", "coco",
                      "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 2 and "challenge_score" in summary and "ap50" in summary
    assert (out / "1_overlay.png").is_file() and not (out / "1_heatmap.png").exists()
    model, cfg, _ = load_detector(run / "best.pt")
    assert cfg.data.input_size == 64 and not model.training


def test_the_flip_sees_a_frame_and_its_mirror_alike(run, arcade):
    model, cfg, _ = load_detector(run / "best.pt")
    frames = load_frame_sets(cfg.data.replace(limit=4), seed=0)["test"]
    size = cfg.data.input_size
    ones = torch.ones(len(frames), 2)
    found = detect(model, frames.images, ones, flip=True)
    mirrored = detect(model, frames.images.flip(-1), ones, flip=True)
    assert any(found) and len(found) == len(mirrored)
    for ours, theirs in zip(found, mirrored, strict=True):
        back = sorted((d.score, d.y, size - d.x - d.w) for d in theirs)
        assert len(ours) == len(theirs)
        for a, b in zip(sorted((d.score, d.y, d.x) for d in ours), back, strict=True):
            assert a[0] == pytest.approx(b[0], abs=1e-5) and a[1] == b[1] and abs(a[2] - b[2]) <= 1


def test_scan_turns_a_detectors_flip_on_and_says_its_threshold_was_chosen_without(
    run, arcade, tmp_path
):
    from lqer.api import scan

    model, cfg, _ = load_detector(run / "best.pt")
    cfg.model.flip, shipped_with_flip = True, tmp_path / "flipped.pt"
    save_detector(shipped_with_flip, model, cfg)
    frames = [arcade / "val" / "images" / f"{k}.png" for k in (1, 2)]
    asked = scan(frames, tmp_path / "asked", run / "best.pt", flip=True)
    stored = scan(frames, tmp_path / "stored", shipped_with_flip)
    plain = scan(frames, tmp_path / "plain", shipped_with_flip, flip=False)
    boxes = {name: json.loads((tmp_path / name / "boxes.json").read_text())
             for name in ("asked", "stored", "plain")}  # fmt: skip
    assert boxes["asked"] == boxes["stored"] != boxes["plain"]
    assert asked["threshold_source"].endswith("chosen without the test-time flip, scanned with it")
    assert plain["threshold_source"].endswith("chosen with the test-time flip, scanned without it")
    assert "test-time" not in stored["threshold_source"]
    assert (asked["flip"], stored["flip"], plain["flip"]) == (True, True, False)


def test_a_window_scan_refuses_the_flip_in_one_line(tmp_path, arcade):
    frame = str(arcade / "val" / "images" / "1.png")
    result = run_lqer("scan", frame, "--checkpoint", "lqer-padsd", "--no-flip", "--out",
                      str(tmp_path / "scan"))  # fmt: skip
    assert result.returncode == 2 and "--flip is for whole-frame detectors" in result.stderr
    assert not (tmp_path / "scan").exists()


def test_patch_commands_refuse_a_detector_in_one_line(run, tmp_path):
    image = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(image)
    result = run_lqer("predict", str(image), "--checkpoint", str(run / "best.pt"), "--out",
                      str(tmp_path / "p.csv"))  # fmt: skip
    assert result.returncode == 2 and "whole-frame detector" in result.stderr


@pytest.mark.parametrize("flip", [[], ["--flip"]])
def test_ship_a_detector_with_its_one_false_positive_threshold(run, tmp_path, flip):
    result = run_lqer("ship", str(run), "--name", "tiny-arcade", "--out", str(tmp_path), *flip)
    assert result.returncode == 0, result.stderr
    meta = json.loads((tmp_path / "tiny-arcade.json").read_text())
    assert meta["config"]["model"]["flip"] is bool(flip)
    assert meta["kind"] == "detector" and 0 <= meta["threshold"]["value"] <= 1
    assert "1 false positive per frame" in meta["threshold"]["rule"]
    assert meta["metrics"]["hold_out"]["fp_per_frame"] <= 1
    assert set(meta["metrics"]["test"]["froc"]) == {"0.25", "0.5", "1", "2", "4", "8"}
    assert (tmp_path / "tiny-arcade.safetensors").stat().st_size < 50e6


def test_the_server_scans_frames_with_a_detector(run, arcade):
    from fastapi.testclient import TestClient

    from lqer.serve.app import Service, create_app

    service = Service("lqer-padsd", frames=run / "best.pt")
    with TestClient(create_app(service)) as client:
        frame = (arcade / "val" / "images" / "1.png").read_bytes()
        answer = client.post("/api/scan", files={"file": ("f.png", frame)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == str(run / "best.pt") and body["overlay_png"].startswith("data:image")
    assert all(b["score"] >= body["threshold"] for b in body["boxes"])
    with pytest.raises(LqerError, match="not a whole-frame detector"):
        Service("lqer-padsd", frames="lqer-padsd")


@pytest.mark.parametrize("flip", [False, True])
def test_export_a_detector_to_onnx_and_scan_with_it(run, arcade, tmp_path, flip):
    checkpoint = run / "best.pt"
    if flip:  # the same weights, scanning with the test-time flip
        model, cfg, _ = load_detector(checkpoint)
        cfg.model.flip, checkpoint = True, tmp_path / "flipped.pt"
        save_detector(checkpoint, model, cfg)
    model = tmp_path / "detector.onnx"
    result = run_lqer("export", "--checkpoint", str(checkpoint), "--out", str(model))
    assert result.returncode == 0, result.stderr
    frames = [str(arcade / "val" / "images" / f"{k}.png") for k in (1, 2)]
    torch_out, onnx_out = tmp_path / "torch", tmp_path / "onnx"
    for out, how in ((torch_out, ["--checkpoint", str(checkpoint)]),
                     (onnx_out, ["--onnx", str(model)])):  # fmt: skip
        scanned = run_lqer("scan", *frames, *how, "--out", str(out))
        assert scanned.returncode == 0, scanned.stderr
    refused = run_lqer("scan", frames[0], "--onnx", str(model), "--no-flip" if flip else "--flip",
                       "--out", str(tmp_path / "refused"))  # fmt: skip
    assert refused.returncode == 2 and "scan with its checkpoint instead" in refused.stderr
    for out in (torch_out, onnx_out):  # the ONNX file says whether the flip is in its graph
        assert json.loads((out / "summary.json").read_text())["flip"] is flip
    ours = json.loads((onnx_out / "boxes.json").read_text())
    theirs = json.loads((torch_out / "boxes.json").read_text())
    assert len(ours) == len(theirs) and all(
        abs(a["score"] - b["score"]) < 1e-4 and (a["x"], a["w"]) == (b["x"], b["w"])
        for a, b in zip(ours, theirs, strict=True)
    )
