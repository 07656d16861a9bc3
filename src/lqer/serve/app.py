"""`lqer serve`: one page and a JSON API over predict, scan and explain (`lqer.serve.service`).

Under load (`lqer.serve.queue`): the line of requests is bounded (503 and Retry-After beyond
it), work of clients that left is dropped, and a request has a time budget. Uploads are read
and decoded one at a time, and a waiting request keeps little of its upload: a prediction its
model inputs, a scan or explain one frame (at most 4 of those are let in). The model serves one
forward pass at a time; patch predictions that arrive together share one, and a scan (one at
a time: it holds a heatmap too) gives the model up between batches of windows.
"""

import asyncio
from importlib import resources
from pathlib import Path
from typing import Annotated

from lqer.errors import LqerError
from lqer.serve.queue import BadUpload, Batcher, Guard, Job, Limits, Load, json_errors
from lqer.serve.service import RESEARCH_ONLY, Service

__all__ = ["BadUpload", "Limits", "Service", "create_app", "serve"]


def create_app(service: Service):
    """The FastAPI app over `service`: the page at /, the API under /api, docs at /docs."""
    from fastapi import FastAPI, File, Query, Request, UploadFile
    from fastapi.responses import HTMLResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="lqer", description=RESEARCH_ONLY, version="1")
    load = app.state.load = Load()
    app.add_middleware(Guard, limits=service.limits, load=load)
    json_errors(app)
    Frame = Annotated[int, Query(ge=0, description="0-based frame of a cine run")]

    reading = asyncio.Semaphore(1)  # one upload's bytes and frames in memory at a time
    one_scan = asyncio.Lock()  # a scan holds a frame, its heatmap and the model for long
    batcher = Batcher(service.score, load, service.limits.batch)

    async def read(parse, upload: UploadFile, *args):
        async with reading:
            data = await upload.read(service.limits.upload_bytes + 1)
            return await run_in_threadpool(parse, data, *args)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return resources.files("lqer.serve").joinpath("index.html").read_text()

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/api/model")
    async def model():
        return service.card()

    @app.get("/api/load")
    async def load_now():
        """Requests in the server now, the peaks, and counts of refused, dropped and done work."""
        return load.as_dict()

    @app.post("/api/predict")
    async def predict(request: Request, file: Annotated[UploadFile, File()]):
        job = Job(request, load, service.limits.seconds)
        patches = await job.until(read(service.read_patches, file))
        probs = await job.until(batcher(patches.inputs))
        load.predicted += 1
        return service.predicted(patches, probs)

    @app.post("/api/explain")
    async def explain(request: Request, file: Annotated[UploadFile, File()], frame: Frame = 0):
        job = Job(request, load, service.limits.seconds)
        image, _ = await job.until(read(service.read_frame, file, frame))
        return await job.until(run_in_threadpool(service.explain, image))

    @app.post("/api/scan")
    async def scan(request: Request, file: Annotated[UploadFile, File()], frame: Frame = 0):
        job = Job(request, load, service.limits.seconds)
        await job.until(one_scan.acquire())
        try:
            image, n_frames = await job.until(read(service.read_frame, file, frame))
            name = Path(file.filename or "").name
            work = run_in_threadpool(service.scan, image, frame, n_frames, job.check, name)
            answer = await job.until(work)
        finally:
            one_scan.release()
        load.scans += 1
        return answer

    return app


def serve(
    checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8000,
    frames: str | Path | None = None,
) -> None:  # fmt: skip
    try:
        import uvicorn
    except ImportError:
        raise LqerError("lqer serve needs fastapi and uvicorn: pip install 'lqer[serve]'") from None
    service = Service(checkpoint, frames=frames)
    uvicorn.run(create_app(service), host=host, port=port, log_level="info")
