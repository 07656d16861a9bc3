"""`lqer serve`'s API with FastAPI's test client: every endpoint, every bad upload, the same
probabilities as `lqer predict`, and no patient data or leftover upload anywhere."""

import io
import tempfile

import numpy as np
import pydicom
import pytest
from conftest import write_dicom
from fastapi.testclient import TestClient

from lqer.eval.evaluate import predict_files
from lqer.eval.predictions import read_predictions
from lqer.serve.app import Limits, Service, create_app

SECRETS = {"PatientName": "Doe^Jane", "PatientID": "PID-93817", "AccessionNumber": "ACC-55121",
           "PatientBirthDate": "19470312", "InstitutionName": "St Elsewhere Hospital",
           "StudyDate": "20250419"}  # fmt: skip


@pytest.fixture(scope="module")
def service():
    return Service("lqer-padsd", Limits(upload_bytes=4 * 2**20, pixels=2**20, frames=8))


@pytest.fixture
def client(service, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # every upload's folder goes here
    with TestClient(create_app(service)) as c:
        yield c
    assert list(tmp_path.iterdir()) == []  # and is gone after each request


@pytest.fixture(scope="module")
def patch(datasets_dir):
    return sorted((datasets_dir / "P-ADSD/validation/positive").glob("*.png"))[0]


@pytest.fixture(scope="module")
def frame(datasets_dir):
    return datasets_dir / "ADSD-sample/images/14_002_5_0016.bmp"


def send(client, endpoint, data: bytes, name="x.bin", **params):
    return client.post(f"/api/{endpoint}", files={"file": (name, data)}, params=params)


def test_health_model_card_page_and_docs(client):
    assert client.get("/health").json() == {"status": "ok"}
    card = client.get("/api/model").json()
    assert card["name"] == "lqer-padsd" and "not a medical device" in card["notice"].lower()
    assert card["metrics"]["n"] == 6014 and 0.9 < card["metrics"]["auc"] < 1
    assert 'id="file"' in client.get("/").text
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/predict", "/api/scan", "/api/explain", "/api/model", "/health"} <= set(paths)


def test_predict_gives_the_probability_of_lqer_predict(client, patch, tmp_path):
    body = send(client, "predict", patch.read_bytes(), "whatever.name").json()
    predict_files("lqer-padsd", [patch], tmp_path / "p.csv", device="cpu")
    expected = read_predictions(tmp_path / "p.csv")[0]
    (tmp_path / "p.csv").unlink()
    assert body["kind"] == "patch" and body["n_frames"] == 1
    assert body["frames"][0]["prob_stenosis"] == pytest.approx(expected.prob, abs=1e-6)
    assert body["frames"][0]["label"] == expected.label


def test_explain_and_scan_answer_with_pictures(client, patch, frame):
    explained = send(client, "explain", patch.read_bytes()).json()
    assert explained["overlay_png"].startswith("data:image/png;base64,")
    predicted = send(client, "predict", frame.read_bytes()).json()
    assert predicted["kind"] == "frame" and (predicted["width"], predicted["height"]) == (512, 512)
    scan = send(client, "scan", frame.read_bytes()).json()
    assert scan["overlay_png"].startswith("data:image/png;base64,")
    assert all(b["score"] >= scan["threshold"] for b in scan["boxes"]) and scan["boxes"]


def test_a_cine_run_steps_by_frame_and_leaks_no_patient_data(client, frame, tmp_path):
    from lqer.data.images import load_gray

    image = load_gray(frame)[::2, ::2]
    write_dicom(tmp_path / "run.dcm", np.stack([image, image[::-1]]), **SECRETS)
    data = (tmp_path / "run.dcm").read_bytes()
    (tmp_path / "run.dcm").unlink()
    answers = [send(client, "predict", data), send(client, "scan", data, frame=1),
               send(client, "explain", data, frame=1)]  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["n_frames"] == 2 and answers[1].json()["frame"] == 1
    text = " ".join(a.text for a in answers)
    assert not [v for v in [*SECRETS.values(), "Doe", "Elsewhere"] if v in text]


def test_every_bad_upload_is_a_clear_4xx(client, patch, frame, tmp_path):
    png = patch.read_bytes()
    write_dicom(tmp_path / "n.dcm", np.zeros((1, 8, 8), np.uint8))
    ds = pydicom.dcmread(tmp_path / "n.dcm")
    del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer)
    (tmp_path / "n.dcm").unlink()
    big = np.zeros((1100, 1000), np.uint8)  # over the 2^20-pixel limit
    from PIL import Image

    big_png = io.BytesIO()
    Image.fromarray(big).save(big_png, format="PNG")
    cases = {
        "empty": (b"", "predict", {}, 400, "empty"),
        "truncated": (png[: len(png) // 2], "predict", {}, 422, "cannot read"),
        "not an image": (b"%PDF-1.4 a report", "predict", {}, 415, "not an image"),
        "too large": (b"\x89PNG\r\n\x1a\n" + b"0" * (4 * 2**20 + 10), "predict", {}, 413, "over"),
        "too many pixels": (big_png.getvalue(), "predict", {}, 422, "over the limit"),
        "dicom without pixels": (buffer.getvalue(), "predict", {}, 422, "no pixel data"),
        "no such frame": (png, "explain", {"frame": 3}, 422, "frame 3"),
        "negative frame": (png, "scan", {"frame": -1}, 422, ""),
        "smaller than the window": (png, "scan", {}, 422, "smaller than"),
    }
    for name, (data, endpoint, params, status, words) in cases.items():
        answer = send(client, endpoint, data, **params)
        assert answer.status_code == status, (name, answer.text)
        assert words in answer.text, (name, answer.text)
    assert client.post("/api/predict").status_code == 422  # no file at all
