"""`lqer serve`: one page and a JSON API over predict, scan and explain.

Safe by default: uploads are limited in bytes and pixels, their type is decided by their
first bytes, never by their name, and each lives only in a temporary folder of its request
that is always removed. Only pixel data is read from DICOM, so no response can carry a
patient's name, ids or dates. Requests are handled one at a time (reading, decoding and
inference), so that concurrent clients queue instead of each holding its frames and a
model's worth of activations.
"""

import asyncio
import base64
import io
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from PIL import Image

from lqer.data.dataset import model_input
from lqer.data.frames import frame_refs, read_frames
from lqer.data.images import BadImage
from lqer.errors import LqerError
from lqer.eval.evaluate import decision, predict_proba
from lqer.eval.explain import cam_maps
from lqer.eval.explain import overlay as cam_overlay
from lqer.eval.scan import ScanConfig, scan_frame, torch_scorer
from lqer.eval.scan import overlay as scan_overlay
from lqer.models.checkpoint import load_checkpoint
from lqer.models.weights import shipped

FRAME_SIDE = 200  # uploads at least this wide and high are scanned as frames by the page
RESEARCH_ONLY = "Research use only. Not a medical device; not for diagnosis or treatment."
# first bytes -> the suffix the readers expect; DICOM has "DICM" after a 128-byte preamble
SIGNATURES = (
    (0, b"\x89PNG\r\n\x1a\n", ".png"), (0, b"\xff\xd8\xff", ".jpg"), (0, b"BM", ".bmp"),
    (0, b"II*\x00", ".tif"), (0, b"MM\x00*", ".tif"), (128, b"DICM", ".dcm"),
)  # fmt: skip


@dataclass(frozen=True)
class Limits:
    upload_bytes: int = 64 * 2**20
    pixels: int = 4096 * 4096  # per frame
    frames: int = 64  # of a cine run, per request


class BadUpload(Exception):
    """An upload the server refuses: `status` is the HTTP code, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def sniff(data: bytes) -> str:
    """The suffix of the upload's format, from its content."""
    if not data:
        raise BadUpload(400, "the upload is empty")
    for offset, magic, suffix in SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return suffix
    raise BadUpload(415, "not an image: expected PNG, JPEG, BMP, TIFF or DICOM content")


class Service:
    """The model and what the API does with it; the web layer only translates."""

    def __init__(self, checkpoint: str | Path = "lqer-padsd", limits: Limits = Limits()):
        self.model, self.cfg, self.info = load_checkpoint(checkpoint)
        self.model.eval()
        self.checkpoint = str(checkpoint)
        self.size = self.cfg.data.image_size
        self.decision = decision(checkpoint, self.info, None)
        self.limits = limits
        self.lock = threading.Lock()

    def card(self) -> dict[str, Any]:
        entry = shipped(self.checkpoint)
        meta = entry.meta if entry is not None else {}
        return {
            "name": self.checkpoint, "model": self.cfg.model.name, "input_size": self.size,
            "threshold": self.decision.threshold, "threshold_source": self.decision.why,
            "training_data": meta.get("training_data"), "test_split": meta.get("test_split"),
            "metrics": meta.get("metrics", {}).get("test"),
            "intervals": meta.get("metrics", {}).get("test_intervals"),
            "licence": meta.get("licence"), "notice": RESEARCH_ONLY,
        }  # fmt: skip

    def frames(self, data: bytes) -> list[np.ndarray]:
        """The upload's frames as uint8 arrays; its file exists only inside this call."""
        if len(data) > self.limits.upload_bytes:
            raise BadUpload(413, f"the upload is over {self.limits.upload_bytes} bytes")
        suffix = sniff(data)
        with tempfile.TemporaryDirectory(prefix="lqer-upload-") as folder:
            path = Path(folder) / f"upload{suffix}"
            path.write_bytes(data)
            try:
                refs = frame_refs(path)
                if len(refs) > self.limits.frames:
                    raise BadUpload(413, f"{len(refs)} frames; at most {self.limits.frames}")
                return [image for _, image in read_frames(refs, self.limits.pixels)]
            except (BadImage, LqerError) as e:
                message = str(e).replace(str(path), "the upload").removeprefix("the upload: ")
                raise BadUpload(422, f"cannot read the upload: {message}") from None

    def patch_input(self, image: np.ndarray) -> torch.Tensor:
        """(1, 1, S, S): the resize that `lqer predict` applies to a decoded file."""
        return model_input(image, self.size)

    def predict(self, data: bytes) -> dict[str, Any]:
        """Probability and call per frame; `kind` says whether the upload looks like a patch
        (P-ADSD's are 32-166 px) or a whole frame, which the page then scans."""
        frames = self.frames(data)
        with self.lock:
            probs = [float(predict_proba(self.model, self.patch_input(f), self.size)[0])
                     for f in frames]  # fmt: skip
        height, width = frames[0].shape
        kind = "frame" if min(height, width) >= FRAME_SIDE else "patch"
        return {**self._header(), "kind": kind, "width": width, "height": height,
                "n_frames": len(frames), "frames": [self._call(p) for p in probs]}  # fmt: skip

    def explain(self, data: bytes, frame: int = 0) -> dict[str, Any]:
        image = self._frame(self.frames(data), frame)
        small = self.patch_input(image)
        with self.lock:
            prob = float(predict_proba(self.model, small, self.size)[0])
            cam = cam_maps(self.model, small, self.size)[0]
        return {**self._call(prob), **self._header(), "overlay_png": png(cam_overlay(image, cam))}

    def scan(self, data: bytes, frame: int = 0, cfg: ScanConfig | None = None) -> dict:
        frames = self.frames(data)
        image = self._frame(frames, frame)
        with self.lock:
            try:
                score = torch_scorer(self.model, self.size)
                heatmap, found = scan_frame(score, image, self.size, cfg or ScanConfig())
            except LqerError as e:  # a frame smaller than the window
                raise BadUpload(422, str(e)) from None
        kept = [d for d in found if d.score >= self.decision.threshold]
        boxes = [(d.x, d.y, d.x + d.w, d.y + d.h) for d in kept]
        return {
            **self._header(), "frame": frame, "n_frames": len(frames),
            "width": image.shape[1], "height": image.shape[0],
            "max_score": max((d.score for d in found), default=0.0),
            "boxes": [{"x": d.x, "y": d.y, "w": d.w, "h": d.h, "score": d.score} for d in kept],
            "overlay_png": png(scan_overlay(image, heatmap, {"lime": boxes})),
        }  # fmt: skip

    def _frame(self, frames: list[np.ndarray], index: int) -> np.ndarray:
        if not 0 <= index < len(frames):
            raise BadUpload(422, f"frame {index} asked for; the upload has {len(frames)}")
        return frames[index]

    def _call(self, prob: float) -> dict[str, Any]:
        stenosis = prob >= self.decision.threshold
        return {"prob_stenosis": round(prob, 7), "label": "stenosis" if stenosis else
                "no_stenosis"}  # fmt: skip

    def _header(self) -> dict[str, Any]:
        return {"model": self.checkpoint, "threshold": self.decision.threshold,
                "notice": RESEARCH_ONLY}  # fmt: skip


def png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def create_app(service: Service):
    """The FastAPI app over `service`: the page at /, the API under /api, docs at /docs."""
    from fastapi import FastAPI, File, Query, Request, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="lqer", description=RESEARCH_ONLY, version="1")
    Frame = Annotated[int, Query(ge=0, description="0-based frame of a cine run")]

    @app.exception_handler(BadUpload)
    async def refused(request: Request, error: BadUpload):
        return JSONResponse({"error": str(error)}, status_code=error.status)

    one_at_a_time = asyncio.Semaphore(1)  # a request's bytes, frames and activations

    async def handle(work, upload: UploadFile, *args):
        """Read the upload and run `work` on it, one request at a time, so that memory holds
        one request's data however many clients wait."""
        async with one_at_a_time:
            try:
                data = await upload.read(service.limits.upload_bytes + 1)
            finally:
                await upload.close()
            return await run_in_threadpool(work, data, *args)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return resources.files("lqer.serve").joinpath("index.html").read_text()

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/api/model")
    async def model():
        return service.card()

    @app.post("/api/predict")
    async def predict(file: Annotated[UploadFile, File()]):
        return await handle(service.predict, file)

    @app.post("/api/explain")
    async def explain(file: Annotated[UploadFile, File()], frame: Frame = 0):
        return await handle(service.explain, file, frame)

    @app.post("/api/scan")
    async def scan(file: Annotated[UploadFile, File()], frame: Frame = 0):
        return await handle(service.scan, file, frame)

    return app


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    try:
        import uvicorn
    except ImportError:
        raise LqerError("lqer serve needs fastapi and uvicorn: pip install 'lqer[serve]'") from None
    uvicorn.run(create_app(Service(checkpoint)), host=host, port=port, log_level="info")
