"""The shipped whole-frame detector `lqer-arcade`: listed, small enough, loadable by name, the
same boxes from every file format of one frame, and its stored test metrics reproduced."""

import json

import numpy as np
import pytest
from helpers import run_lqer, write_dicom
from PIL import Image

from lqer.models.weights import WEIGHTS

ENTRY = WEIGHTS["lqer-arcade"]


def test_it_is_listed_small_and_states_its_test_split():
    assert ENTRY.problem() is None, ENTRY.problem()
    weights, info = ENTRY.files
    assert weights.stat().st_size <= 50 * 2**20
    meta = json.loads(info.read_text())
    assert meta["kind"] == "detector" and meta["test_split"] == "ARCADE-stenosis val/"
    assert meta["threshold"]["rule"].startswith("<= 1 false positive per frame on the hold-out")
    assert meta["metrics"]["hold_out"]["fp_per_frame"] <= 1.0
    listed = run_lqer("models").stdout
    assert "lqer-arcade" in listed and "not in this installation" not in listed


def boxes(folder) -> list[tuple]:
    rows = json.loads((folder / "boxes.json").read_text())
    return [(r["x"], r["y"], r["w"], r["h"], round(r["score"], 3)) for r in rows]


def test_every_frame_format_gives_the_same_boxes(datasets_dir, tmp_path):
    frame = np.asarray(Image.open(datasets_dir / "ARCADE-stenosis" / "val" / "images" / "1.png"))
    frame = frame if frame.ndim == 2 else frame[..., 0]
    found = {}
    for suffix in ("png", "bmp", "tiff", "dcm"):
        path = tmp_path / "in" / f"frame.{suffix}"
        path.parent.mkdir(exist_ok=True)
        if suffix == "dcm":
            write_dicom(path, np.stack([frame] * 3))  # a 3-frame cine run of the same frame
        else:
            Image.fromarray(frame).save(path)
        result = run_lqer("scan", str(path), "--checkpoint", "lqer-arcade", "--out",
                          str(tmp_path / suffix))  # fmt: skip
        assert result.returncode == 0, result.stderr
        found[suffix] = boxes(tmp_path / suffix)
        path.unlink()
    assert found["png"], "no candidate at all on a frame with stenoses"
    assert found["bmp"] == found["png"] and found["tiff"] == found["png"]
    assert found["dcm"] == found["png"] * 3  # each frame of the run


@pytest.mark.slow
def test_a_scan_of_val_reproduces_the_stored_metrics(datasets_dir, tmp_path):
    val = datasets_dir / "ARCADE-stenosis" / "val"
    result = run_lqer("scan", str(val / "images"), "--checkpoint", "lqer-arcade", "--annotations",
                      str(val / "annotations" / "val.json"), "--format", "coco", "--out",
                      str(tmp_path / "scan"), timeout=1200)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "scan" / "summary.json").read_text())
    stored = json.loads(ENTRY.files[1].read_text())["metrics"]["test"]
    assert summary["threshold_source"].startswith("stored with lqer-arcade")
    for point in ("0.5", "1", "2"):
        assert summary["froc"][point] == pytest.approx(stored["froc"][point], abs=0.02), point
    assert summary["ap50"] == pytest.approx(stored["ap50"], abs=0.02)
