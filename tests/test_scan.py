"""`lqer scan`: windows, crops that match cut patches, suppression, scoring against boxes, the
command on real ADSD frames, and no patient data in any output of a DICOM scan."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from helpers import write_dicom
from PIL import Image
from typer.testing import CliRunner

from lqer.cli import _register, app
from lqer.data.annotations import Box
from lqer.data.dataset import _decode
from lqer.data.images import load_gray
from lqer.eval.detection import froc, score_at
from lqer.eval.evaluate import predict_proba
from lqer.eval.scan import (
    Detection,
    ScanConfig,
    crops,
    scan_frame,
    suppress,
    torch_scorer,
    windows,
)
from lqer.models.checkpoint import load_checkpoint

_register()
RUNNER = CliRunner()


@pytest.fixture(scope="module")
def shipped_model():
    model, cfg, info = load_checkpoint("lqer-padsd")
    return model.eval(), cfg.data.image_size


@pytest.fixture
def two_frames(datasets_dir, tmp_path):
    """Frames 16 and 17 of the ADSD sample (3 labelled stenoses) and their VOC files."""
    sample = datasets_dir / "ADSD-sample"
    for sub, suffix in (("images", ".bmp"), ("annotations", ".xml")):
        (tmp_path / sub).mkdir()
        for k in (16, 17):
            name = f"14_002_5_{k:04d}{suffix}"
            shutil.copy(sample / sub / name, tmp_path / sub / name)
    return tmp_path


def test_windows_tile_the_frame_up_to_its_far_edges():
    corners = windows(100, 130, 40, 0.25)
    xs, ys = sorted(set(corners[:, 0].tolist())), sorted(set(corners[:, 1].tolist()))
    assert xs[0] == ys[0] == 0 and xs[-1] == 130 - 40 and ys[-1] == 100 - 40
    assert max(np.diff(xs)) == max(np.diff(ys)) == 10
    assert len(corners) == len(xs) * len(ys)


def test_a_window_is_the_patch_predict_would_see(datasets_dir, tmp_path, shipped_model):
    """Crop and resize in a batch, as scan does, equals cutting the patch, saving it and
    decoding it, as predict does: the same pixels, so the same probability."""
    model, size = shipped_model
    frame = load_gray(datasets_dir / "ADSD-sample/images/14_002_5_0016.bmp")
    corners = torch.tensor([[166, 130], [0, 0], [400, 300]])
    batch = crops(torch.from_numpy(frame), corners, 52, size)
    for k, (x, y) in enumerate(corners.tolist()):
        path = tmp_path / f"{k}.png"
        from PIL import Image

        Image.fromarray(frame[y : y + 52, x : x + 52]).save(path)
        torch.testing.assert_close(batch[k], _decode(path, size, 10**8), atol=0, rtol=0)
    direct = predict_proba(model, batch, size)
    cut = predict_proba(model, torch.stack([_decode(tmp_path / f"{k}.png", size, 10**8)
                                            for k in range(3)]), size)  # fmt: skip
    np.testing.assert_array_equal(direct, cut)


def test_suppression_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float64)
    scores = torch.tensor([0.6, 0.9, 0.02], dtype=torch.float64)
    kept = suppress(boxes, scores, ScanConfig(min_score=0.05))
    assert kept == [Detection(1, 1, 10, 10, 0.9)]  # the low one is under min_score


def test_scoring_counts_hits_misses_and_false_positives():
    truth = {"a": [Box(10, 10, 20, 20, "Stenosis"), Box(100, 100, 110, 110, "Stenosis")],
             "b": [Box(0, 0, 8, 8, "Stenosis")]}  # fmt: skip
    scans = {
        "a": [Detection(8, 8, 12, 12, 0.9),  # hits box 1
              Detection(60, 60, 10, 10, 0.7),  # false
              Detection(98, 98, 10, 10, 0.3)],  # hits 2
        "b": [Detection(200, 200, 10, 10, 0.8)],  # false
    }  # fmt: skip
    at = score_at(scans, truth, 0.5)
    assert (at.boxes, at.found, at.false_positives, at.frames) == (3, 1, 2, 2)
    curve = froc(scans, truth)
    assert [s.threshold for s in curve] == [0.9, 0.8, 0.7, 0.3]
    assert [s.found for s in curve] == [1, 1, 1, 2]
    assert [s.fp_per_frame for s in curve] == [0, 0.5, 1.0, 1.0]


def test_a_frame_smaller_than_the_window_is_a_clear_error(shipped_model):
    model, size = shipped_model
    with pytest.raises(Exception, match="smaller than the 64 px window"):
        scan_frame(torch_scorer(model, size), np.zeros((40, 80), np.uint8), size)


def test_scan_command_scores_real_frames_against_their_boxes(two_frames):
    out = two_frames / "scan"
    args = ["scan", str(two_frames / "images"), "--checkpoint", "lqer-padsd", "--out", str(out),
            "--annotations", str(two_frames / "annotations"), "--device", "cpu"]  # fmt: skip
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    with open(out / "hits.csv", newline="") as f:
        hits = list(csv.DictReader(f))
    assert summary["boxes"] == len(hits) == 3
    assert summary["flip"] is None  # a window scan has no test-time flip
    assert summary["found"] == sum(h["hit"] == "True" for h in hits)
    assert f"{summary['found']} of 3 found" in result.output
    with open(out / "boxes.csv", newline="") as f:
        boxes = list(csv.DictReader(f))
    above = [b for b in boxes if b["above_threshold"] == "True"]
    assert len(above) == summary["candidates_above_threshold"]
    assert all(float(b["score"]) >= summary["threshold"] for b in above)
    for k in (16, 17):
        for kind in ("heatmap", "overlay"):
            assert (out / f"14_002_5_{k:04d}_{kind}.png").is_file()
    heat = load_gray(out / "14_002_5_0016_heatmap.png")
    assert heat.shape == (512, 512) and heat.max() > 128  # the stenosis of frame 16 shows
    with open(out / "froc.csv", newline="") as f:
        curve = [(float(r["fp_per_frame"]), float(r["sensitivity"])) for r in csv.DictReader(f)]
    assert all(a <= b for (a, _), (b, _) in zip(curve, curve[1:], strict=False))  # FP grows
    assert (out / "froc.png").is_file()
    # explaining the best windows scores them as the scan did
    explain = two_frames / "explain"
    result = RUNNER.invoke(app, ["explain", str(two_frames / "images"), "--checkpoint",
                                 "lqer-padsd", "--boxes", str(out / "boxes.csv"), "--top", "2",
                                 "--out", str(explain), "--method", "gradcam"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with open(explain / "explain.csv", newline="") as f:
        explained = list(csv.DictReader(f))
    assert len(explained) == 4
    best = {}
    for b in boxes:
        best.setdefault((b["source"], b["frame"]), []).append(float(b["score"]))
    for row in explained:
        scores = sorted(best[(row["source"], row["frame"])], reverse=True)[:2]
        assert min(abs(float(row["prob_stenosis"]) - s) for s in scores) < 1e-5
        assert (explain / f"{row['id']}_gradcam.png").is_file()
    # a second scan into the same folder is fine (lqer wrote it); a foreign folder is not
    foreign = two_frames / "annotations"
    result = RUNNER.invoke(app, [*args[:5], str(foreign)], standalone_mode=False)
    assert "did not write" in str(result.exception)


def test_scan_and_explain_of_a_dicom_run_leak_no_patient_data(datasets_dir, tmp_path):
    frame = load_gray(datasets_dir / "ADSD-sample/images/14_002_5_0016.bmp")[::2, ::2]
    secrets = {"PatientName": "Doe^Jane", "PatientID": "PID-93817", "AccessionNumber": "ACC-55121",
               "PatientBirthDate": "19470312", "InstitutionName": "St Elsewhere Hospital",
               "StudyDate": "20250419", "SeriesDate": "20250419", "AcquisitionDate": "20250419",
               "ContentDate": "20250419"}  # fmt: skip
    write_dicom(tmp_path / "run.dcm", np.stack([frame, frame[::-1]]), **secrets)
    out = tmp_path / "scan"
    args = ["scan", str(tmp_path / "run.dcm"), "--checkpoint", "lqer-padsd", "--out", str(out),
            "--frames", "2", "--device", "cpu"]  # fmt: skip
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == [
        "run_0002_heatmap.png", "run_0002_overlay.png"]  # fmt: skip
    explained = RUNNER.invoke(app, ["explain", str(tmp_path / "run.dcm"), "--checkpoint",
                                    "lqer-padsd", "--out", str(tmp_path / "explain")])  # fmt: skip
    assert explained.exit_code == 0, explained.output
    assert (tmp_path / "explain" / "run_0001_gradcam.png").is_file()
    predicted = RUNNER.invoke(app, ["predict", str(tmp_path / "run.dcm"), "--checkpoint",
                                    "lqer-padsd", "--out", str(tmp_path / "p.csv")])  # fmt: skip
    assert predicted.exit_code == 0, predicted.output
    with open(tmp_path / "p.csv", newline="") as f:
        files = [row["file"] for row in csv.DictReader(f)]
    assert files == [f"{tmp_path / 'run.dcm'}#1", f"{tmp_path / 'run.dcm'}#2"]
    texts = [result.output, explained.output, predicted.output] + [p.read_bytes().decode("latin-1")
                                                 for p in tmp_path.rglob("*")
                                                 if p.is_file() and p.suffix != ".dcm"]  # fmt: skip
    values = [v for v in secrets.values()] + ["Doe", "Jane", "Elsewhere"]
    assert not [v for v in values for text in texts if v in text]


def test_bad_input_leaves_no_output_folder(tmp_path):
    out = tmp_path / "scan"
    args = ["scan", str(tmp_path / "missing.png"), "--checkpoint", "lqer-padsd", "--out", str(out)]
    result = RUNNER.invoke(app, args, standalone_mode=False)
    assert "no such file or folder" in str(result.exception)
    assert not out.exists()


def test_yolo_and_coco_boxes_score_as_voc_boxes(two_frames):
    from lqer.data.annotations import read_voc
    from lqer.eval.scan_files import scan_files

    yolo = two_frames / "yolo"
    yolo.mkdir()
    coco = {"images": [], "annotations": [], "categories": [{"id": 0, "name": "Stenosis"}]}
    for k, xml in enumerate(sorted((two_frames / "annotations").glob("*.xml"))):
        boxes = read_voc(xml)
        (yolo / f"{xml.stem}.txt").write_text("\n".join(
            f"0 {(b.xmin + b.xmax) / 1024} {(b.ymin + b.ymax) / 1024} {b.width / 512} "
            f"{b.height / 512}" for b in boxes))  # fmt: skip
        coco["images"].append({"id": k, "file_name": f"{xml.stem}.bmp", "width": 512,
                               "height": 512})  # fmt: skip
        coco["annotations"] += [{"id": len(coco["annotations"]) + i, "image_id": k,
                                 "category_id": 0, "bbox": [b.xmin, b.ymin, b.width, b.height]}
                                for i, b in enumerate(boxes)]  # fmt: skip
    (two_frames / "coco.json").write_text(json.dumps(coco))
    cfg = ScanConfig(sizes=(48,), stride=0.5)
    found = {}
    for fmt, where in (("voc", "annotations"), ("yolo", "yolo"), ("coco", "coco.json")):
        summary = scan_files("lqer-padsd", [two_frames / "images"], two_frames / f"scan-{fmt}", cfg,
                             annotations=two_frames / where, fmt=fmt, progress=False)  # fmt: skip
        with open(two_frames / f"scan-{fmt}" / "hits.csv", newline="") as f:
            rows = [(r["frame_id"], round(float(r["xmin"])), r["hit"]) for r in csv.DictReader(f)]
        found[fmt] = (summary["boxes"], summary["false_positives"], rows)
    assert found["voc"][0] == 3 and found["yolo"] == found["voc"] == found["coco"]


def test_one_collector_keeps_files_of_one_name_and_scan_refuses_them(tmp_path):
    from lqer.data.frames import collect_frames
    from lqer.errors import LqerError
    from lqer.eval.scan_files import scan_files

    for folder in ("positive", "negative"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        Image.fromarray(np.full((64, 64), 80, np.uint8)).save(tmp_path / "in" / folder / "7.png")
    refs = collect_frames([tmp_path / "in"])
    assert [ref.path.parent.name for ref in refs] == ["negative", "positive"]
    with pytest.raises(LqerError, match=r"two frames share the id 7: .*negative/7.png, .*positive"):
        scan_files("lqer-padsd", [tmp_path / "in"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
