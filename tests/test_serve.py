"""`lqer serve`'s API with FastAPI's test client: every endpoint, every bad upload, the same
probabilities as `lqer predict`, and no patient data or leftover upload anywhere."""

import asyncio
import base64
import contextlib
import io
import re
import select
import socket
import struct
import tempfile
import threading
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pydicom
import pytest
import torch
from fastapi.testclient import TestClient
from helpers import write_dicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from lqer.eval.evaluate import predict_files
from lqer.eval.overlay import HEADER
from lqer.eval.predictions import read_predictions
from lqer.eval.scan import ScanConfig
from lqer.serve.app import Limits, Service, create_app
from lqer.serve.queue import Batcher, Load

SECRETS = {"PatientName": "Doe^Jane", "PatientID": "PID-93817", "AccessionNumber": "ACC-55121",
           "PatientBirthDate": "19470312", "InstitutionName": "St Elsewhere Hospital",
           "StudyDate": "20250419"}  # fmt: skip


@pytest.fixture(scope="module")
def service():
    limits = Limits(upload_bytes=4 * 2**20, pixels=2**20, frames=8, decoded_pixels=2**22)
    return Service("lqer-padsd", limits)


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


def test_predict_gives_the_probability_of_lqer_predict(client, patch, tmp_path_factory):
    body = send(client, "predict", patch.read_bytes(), "whatever.name").json()
    out = tmp_path_factory.mktemp("predict") / "p.csv"  # not in the uploads' folder
    predict_files("lqer-padsd", [patch], out, device="cpu")
    expected = read_predictions(out)[0]
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
    picture = Image.open(io.BytesIO(base64.b64decode(scan["overlay_png"].split(",", 1)[1])))
    assert picture.size == (512, 512 + HEADER)  # the frame under its title and legend
    legend = np.asarray(picture.convert("RGB"))[:HEADER]
    assert (legend == [0, 255, 0]).all(-1).any()  # the candidates' colour, keyed
    assert scan["file"] == "x.bin"  # the name the upload gave
    card = client.get("/api/model").json()
    assert "trained on patches" in card["frame_limits"]


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


# ----------------------------------------------------------------- errors, warnings, limits


def test_fastapi_errors_have_lqer_shape(client):
    """Validation, 404 and 405 answer `{"error": ...}` as lqer's own errors do."""
    missing = client.post("/api/predict")
    assert missing.status_code == 422 and missing.json() == {"error": "file: Field required"}
    negative = client.post("/api/scan", params={"frame": -1}, files={"file": ("x", b"x")})
    assert negative.status_code == 422 and negative.json()["error"].startswith("frame: ")
    assert client.get("/api/nothing").json() == {"error": "Not Found"}
    wrong = client.get("/api/predict")
    assert wrong.status_code == 405 and wrong.json() == {"error": "Method Not Allowed"}
    assert "POST" in wrong.headers["allow"]


def test_predict_warns_of_input_the_model_was_not_trained_on(client, patch, frame):
    black = io.BytesIO()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(black, format="PNG")
    blank = send(client, "predict", black.getvalue()).json()["frames"][0]
    assert "blank" in blank["warning"] and blank["label"] in ("stenosis", "no_stenosis")
    assert send(client, "predict", patch.read_bytes()).json()["frames"][0]["warning"] is None
    whole = send(client, "predict", frame.read_bytes()).json()["frames"][0]
    assert "larger than a patch" in whole["warning"]
    black = io.BytesIO()
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(black, format="PNG")
    assert "blank" in send(client, "scan", black.getvalue()).json()["warning"]


def deflated_dicom(path, frames: int, side: int, junk: int = 0) -> None:
    """A deflated DICOM of black frames, made without holding them (16 frames of 4096x4096,
    256 MiB once inflated, take 256 KB), and `junk` zero bytes after them."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.Rows = ds.Columns = side
    ds.NumberOfFrames, ds.SamplesPerPixel, ds.PhotometricInterpretation = frames, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()  # the header alone, its dataset deflated: inflate, add pixels
    start = 144 + pydicom.dcmread(io.BytesIO(data)).file_meta.FileMetaInformationGroupLength
    pixels = frames * side * side
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [data[:start], deflate.compress(zlib.decompress(data[start:], -zlib.MAX_WBITS))]
    parts.append(deflate.compress(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, pixels)))
    parts += [deflate.compress(bytes(side * side)) for _ in range(frames)]
    parts.append(deflate.compress(bytes(junk)))
    path.write_bytes(b"".join([*parts, deflate.flush()]))


def peak_bytes(work) -> int:
    """The most memory Python allocated while `work()` ran (zlib's output included)."""
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_deflated_dicom_is_never_inflated_whole_to_read_its_header(tmp_path):
    from lqer.data.dicom import dicom_shape, frame_count, read_dicom
    from lqer.data.images import BadImage

    deflated_dicom(tmp_path / "bomb.dcm", 16, 4096)  # 256 MiB once inflated
    assert dicom_shape(tmp_path / "bomb.dcm") == (16, 4096, 4096)
    assert peak_bytes(lambda: dicom_shape(tmp_path / "bomb.dcm")) < 16 * 2**20
    deflated_dicom(tmp_path / "small.dcm", 2, 64)
    assert read_dicom(tmp_path / "small.dcm").shape == (2, 64, 64)
    padded = tmp_path / "padded.dcm"  # small frames, then 256 MiB more once inflated
    deflated_dicom(padded, 2, 64, junk=2**28)
    assert frame_count(padded) == 2 and peak_bytes(lambda: frame_count(padded)) < 16 * 2**20

    def refused() -> None:
        with pytest.raises(BadImage, match="inflates to more"):
            read_dicom(padded)

    assert peak_bytes(refused) < 16 * 2**20


def test_decoded_pixels_are_limited_before_decoding(client, tmp_path):
    deflated_dicom(tmp_path / "run.dcm", 6, 1024)  # each frame within the limits, not all 6
    data = (tmp_path / "run.dcm").read_bytes()
    (tmp_path / "run.dcm").unlink()
    answer = send(client, "predict", data)
    assert answer.status_code == 413, answer.text
    assert (
        answer.json()["error"] == "6 frames of 1024x1024 decode to 6291456 pixels; at most 4194304"
    )


def test_a_scan_over_its_time_stops_with_503(frame):
    service = Service("lqer-padsd", Limits(seconds=0))
    with TestClient(create_app(service)) as client:
        answer = send(client, "scan", frame.read_bytes())
    assert answer.status_code == 503 and "ran over its 0 s" in answer.json()["error"]
    assert int(answer.headers["retry-after"]) > 0
    assert client.app.state.load.over_time == 1 and client.app.state.load.scans == 0


def test_concurrent_predictions_share_one_forward_pass():
    calls = []

    def score(inputs):
        calls.append(len(inputs))
        time.sleep(0.2)  # the model is busy: the others arrive meanwhile
        return np.arange(len(inputs), dtype=np.float32)

    async def five():
        batcher = Batcher(score, Load(), most=256)
        one = asyncio.create_task(batcher(torch.zeros(1, 1, 4, 4)))
        await asyncio.sleep(0.05)
        rest = [batcher(torch.zeros(n, 1, 4, 4)) for n in (1, 2, 1, 3)]
        return await asyncio.gather(one, *rest)

    answers = asyncio.run(five())
    assert calls == [1, 7]  # the first alone, the four that came meanwhile together
    assert [a.tolist() for a in answers] == [[0], [0], [1, 2], [3], [4, 5, 6]]


# ------------------------------------------------------------ a real server, real connections


@contextlib.contextmanager
def running(app):
    """`app` under uvicorn on 127.0.0.1 and a free port, in a thread: real connections, which
    (unlike FastAPI's TestClient) clients can close early."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.should_exit = True
        thread.join(30)


def wait_until_idle(load: Load, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while load.requests and time.monotonic() < end:
        time.sleep(0.05)
    assert load.requests == 0, load


def upload_head(port: int, length_header: str) -> bytes:
    return (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{length_header}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n").encode()  # fmt: skip


def response_of(connection: socket.socket) -> str:
    """The whole HTTP response on `connection`: headers, then Content-Length bytes of body."""
    data = b""
    while True:
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        if length and len(body) >= int(length[1]):
            return data.decode()
        if not (chunk := connection.recv(65536)):
            return data.decode()
        data += chunk


def test_a_body_over_the_limit_is_refused_before_it_is_read(service):
    with running(create_app(service)) as (_, port):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
            c.sendall(upload_head(port, f"Content-Length: {400 * 2**20}"))  # and not a byte more
            answer = response_of(c)
        assert answer.startswith("HTTP/1.1 413") and "the upload is over 4194304 bytes" in answer
        with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
            c.sendall(upload_head(port, "Transfer-Encoding: chunked"))  # no length to trust
            part = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n'
                    b"Content-Type: application/octet-stream\r\n\r\n" + bytes(2**20))  # fmt: skip
            sent = 0
            with contextlib.suppress(ConnectionError):  # the server may close it first
                while sent < 64 and not select.select([c], [], [], 0)[0]:
                    c.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                    sent, part = sent + 1, bytes(2**20)
            answer = response_of(c)
        assert answer.startswith("HTTP/1.1 413") and '{"error":"the upload is over' in answer
        assert sent < 16  # MiB of 64: the limit is 4, and socket buffers hold a few


def storm_client(url: str, k: int, patch: bytes, frame: bytes, start: threading.Barrier):
    """Client k: odd ones scan a 1024x1024 frame, even ones predict a patch; every other pair
    leaves after half a second (a timeout closes the connection). Two requests each."""
    scan, leaves = k % 2 == 1, (k // 2) % 2 == 1
    endpoint, data = ("scan", frame) if scan else ("predict", patch)
    start.wait()
    outcomes = []
    for _ in range(2):
        try:
            answer = httpx.post(f"{url}/api/{endpoint}", files={"file": data},
                                timeout=0.5 if leaves else 120)  # fmt: skip
            outcomes.append((endpoint, leaves, answer.status_code, answer))
        except httpx.TimeoutException:
            outcomes.append((endpoint, leaves, "left", None))
        time.sleep(0.2)
    return outcomes


def test_a_hostile_mixed_load_stays_bounded_and_drops_clients_that_left(patch, frame):
    """50 clients at once, patches and 1024x1024 frames, half of them leaving early."""
    big = io.BytesIO()
    Image.open(frame).convert("L").resize((1024, 1024)).save(big, format="PNG")
    limits = Limits(requests=16, heavy=3, seconds=60)
    service = Service("lqer-padsd", limits, ScanConfig(sizes=(64,), stride=0.5))  # 961 windows
    app = create_app(service)
    load = app.state.load
    with running(app) as (url, _):
        with pytest.raises(httpx.TimeoutException):  # a scan whose client leaves at once...
            httpx.post(f"{url}/api/scan", files={"file": big.getvalue()}, timeout=0.5)
        wait_until_idle(load)
        assert (load.dropped, load.scans) == (1, 0)  # ...is stopped, never finished
        start = threading.Barrier(50)
        with ThreadPoolExecutor(50) as pool:
            runs = [pool.submit(storm_client, url, k, patch.read_bytes(), big.getvalue(), start)
                    for k in range(50)]  # fmt: skip
            outcomes = [o for run in runs for o in run.result()]
        began = time.perf_counter()
        after = httpx.post(f"{url}/api/predict", files={"file": patch.read_bytes()}, timeout=60)
        waited = time.perf_counter() - began
        wait_until_idle(load)
    statuses = {status for _, leaves, status, _ in outcomes if not leaves}
    assert statuses <= {200, 503}, statuses  # no other error; those who stayed all had answers
    for _, _, status, answer in outcomes:
        if status == 503:
            assert answer.json()["error"] and int(answer.headers["retry-after"]) > 0
    scans_asked = sum(endpoint == "scan" for endpoint, *_ in outcomes)
    scans_answered = sum(e == "scan" and s == 200 for e, _, s, _ in outcomes)
    assert load.peak_requests <= 16 and load.peak_heavy <= 3 and load.refused > 0, load
    assert load.scans == scans_answered < scans_asked, load  # none for a client that left
    assert load.passes < load.predicted, load  # predictions shared forward passes
    assert after.status_code == 200 and waited < 10, waited  # about 0.1 s alone
