"""What `lqer serve` lets in and how long it works for: bytes, pixels, requests in line, time.

Every bound answers at once and as JSON `{"error": ...}`: 413 for a body over the upload limit
(from its Content-Length, or counted as it arrives, before the multipart parser spools it),
503 with Retry-After when the line is full or a request runs over its time. Work of a client
that has gone is dropped: each admitted request is a `Job` that looks at its connection while
it waits and between a scan's batches. Patch predictions that arrive while the model is busy
are scored together, in one forward pass (`Batcher`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")
RETRY_AFTER = 5  # seconds, in the Retry-After header of a 503
POLL = 0.1  # seconds between looks at a waiting client's connection
MULTIPART_SLACK = 64 * 2**10  # bytes of a body beyond its file: boundaries and part headers
HEAVY = ("/api/scan", "/api/explain")  # each holds a whole frame and the model for long


@dataclass(frozen=True)
class Limits:
    """What one request may bring and what the server holds at once; beyond each, a refusal."""

    upload_bytes: int = 64 * 2**20
    pixels: int = 4096 * 4096  # per frame
    frames: int = 64  # of a cine run, per request
    decoded_pixels: int = 2**25  # frames x height x width of a request, read from its header
    requests: int = 64  # API requests in the server at once, at work or waiting; more: 503
    heavy: int = 4  # scans and explains among them: one at work, the rest waiting
    seconds: float = 120.0  # a request's time from admission to answer; more: 503
    batch: int = 256  # patches scored in one forward pass, at most


class BadUpload(Exception):
    """A request the server refuses: `status` is the HTTP code, the message says why."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.headers = {"Retry-After": str(retry_after)} if retry_after else None


@dataclass
class Load:
    """What the API holds now, and counts of what it has done; `/api/load` shows them."""

    requests: int = 0  # in the server now
    heavy: int = 0  # scans and explains among them
    peak_requests: int = 0
    peak_heavy: int = 0
    refused: int = 0  # 503: the line was full
    dropped: int = 0  # the client left before its answer; its work stopped or never began
    over_time: int = 0  # 503: over the time budget
    scans: int = 0  # scans computed to the end
    passes: int = 0  # forward passes of predictions
    predicted: int = 0  # predictions answered

    def admit(self, heavy: bool, limits: Limits) -> bool:
        if self.requests >= limits.requests or (heavy and self.heavy >= limits.heavy):
            self.refused += 1
            return False
        self.requests += 1
        self.heavy += heavy
        self.peak_requests = max(self.peak_requests, self.requests)
        self.peak_heavy = max(self.peak_heavy, self.heavy)
        return True

    def leave(self, heavy: bool) -> None:
        self.requests -= 1
        self.heavy -= heavy

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Guard:
    """Pure ASGI middleware before the routes. FastAPI's own `max_body_size` answers 413 in
    plain text when a response starts before the body is read, hence this."""

    def __init__(self, app, limits: Limits, load: Load):
        self.app, self.limits, self.load = app, limits, load
        self.max_body = limits.upload_bytes + MULTIPART_SLACK

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        declared = content_length(scope)
        if declared is not None and declared > self.max_body:
            return await refuse(scope, receive, send, BadUpload(413, self.too_large()))
        heavy = scope["path"] in HEAVY
        if not self.load.admit(heavy, self.limits):
            busy = "the server is busy: too many requests in line; try again shortly"
            return await refuse(scope, receive, send, BadUpload(503, busy, RETRY_AFTER))
        try:
            await self.app(scope, self.counted(receive), send)
        finally:
            self.load.leave(heavy)

    def counted(self, receive):
        """`receive` that stops a body without a (truthful) Content-Length at the limit: the
        HTTPException passes through FastAPI's form parsing to the app's handler, a 413."""
        from starlette.exceptions import HTTPException

        seen = 0

        async def receive_counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise HTTPException(413, self.too_large())
            return message

        return receive_counted

    def too_large(self) -> str:
        return f"the upload is over {self.limits.upload_bytes} bytes"


def content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def refuse(scope, receive, send, error: BadUpload) -> None:
    from starlette.responses import JSONResponse

    response = JSONResponse({"error": str(error)}, error.status, headers=error.headers)
    await response(scope, receive, send)


def json_errors(app) -> None:
    """Every error of `app` as `{"error": "..."}`: lqer's own, FastAPI's validation (one line
    naming each wrong field) and Starlette's (404, 405, a body over the limit)."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(BadUpload)
    async def refused(request, error: BadUpload):
        return JSONResponse({"error": str(error)}, error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        return JSONResponse({"error": str(error.detail)}, error.status_code, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error: RequestValidationError):
        return JSONResponse({"error": validation_message(error)}, 422)


def validation_message(error) -> str:
    """E.g. `frame: Input should be greater than or equal to 0`; `file: Field required`."""
    parts = []
    for e in error.errors():
        field = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{field or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class Job:
    """One admitted request's work: it stops when its client leaves or its time runs out."""

    def __init__(self, request, load: Load, seconds: float):
        self.request, self.load, self.seconds = request, load, seconds
        self.deadline = time.monotonic() + seconds
        self.stopped: BadUpload | None = None  # read by work in threads, between batches

    def check(self) -> None:
        """Raise if the work should stop; safe to call from any thread."""
        if self.stopped is None and time.monotonic() > self.deadline:
            self.load.over_time += 1
            self.stopped = BadUpload(503, f"the request ran over its {self.seconds:g} s; the "
                                     "server is busy or the frame large", RETRY_AFTER)  # fmt: skip
        if self.stopped is not None:
            raise self.stopped

    async def until(self, work: Awaitable[T]) -> T:
        """The result of `work`, unless the client leaves or the time runs out first: then the
        work is cancelled (in a thread: it sees `stopped` at its next `check`), and raises."""
        task = asyncio.ensure_future(work)
        while not task.done():
            await asyncio.wait({task}, timeout=POLL)
            if not task.done() and await self._should_stop():
                task.cancel()
                await asyncio.wait({task})  # a thread ends its batch first
                self.check()
        return task.result()

    async def _should_stop(self) -> bool:
        if self.stopped is None and await self.request.is_disconnected():
            self.load.dropped += 1
            self.stopped = BadUpload(499, "the client closed the connection")
        try:
            self.check()
        except BadUpload:
            return True
        return False


class Batcher:
    """Patch predictions that arrive while the model is busy wait for its current pass, then
    are scored together: one `score` call, one forward pass, for all of them."""

    def __init__(self, score: Callable[[torch.Tensor], np.ndarray], load: Load, most: int):
        self.score, self.load, self.most = score, load, most
        self.waiting: list[tuple[torch.Tensor, asyncio.Future]] = []
        self.worker: asyncio.Task | None = None

    async def __call__(self, inputs: torch.Tensor) -> np.ndarray:
        """Probabilities of (N, 1, S, S) inputs, the N frames of one request."""
        answer = asyncio.get_running_loop().create_future()
        self.waiting.append((inputs, answer))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._work())
        return await answer  # cancelled if the client leaves: the pass then skips it

    async def _work(self) -> None:
        from starlette.concurrency import run_in_threadpool

        while batch := self._next():
            try:
                probs = await run_in_threadpool(self.score, torch.cat([x for x, _ in batch]))
            except Exception as e:  # every waiting request hears of it
                probs = e
            self.load.passes += 1
            start = 0
            for inputs, answer in batch:
                end = start + len(inputs)
                if answer.done():
                    pass  # its client left while the pass ran
                elif isinstance(probs, Exception):
                    answer.set_exception(probs)
                else:
                    answer.set_result(probs[start:end])
                start = end

    def _next(self) -> list[tuple[torch.Tensor, asyncio.Future]]:
        """The waiting requests still wanted, oldest first, up to `most` patches (a request's
        frames stay together)."""
        self.waiting = [(x, answer) for x, answer in self.waiting if not answer.done()]
        batch, size = [], 0
        for x, answer in self.waiting:
            if batch and size + len(x) > self.most:
                break
            batch.append((x, answer))
            size += len(x)
        self.waiting = self.waiting[len(batch) :]
        return batch


class FairLock:
    """A lock granted in arrival order. A scan takes the model batch by batch; with a plain
    Lock its thread could take it straight back, again and again, while predictions wait."""

    def __init__(self):
        self._turn = threading.Condition()
        self._next = self._serving = 0

    def __enter__(self) -> None:
        with self._turn:
            ticket, self._next = self._next, self._next + 1
            self._turn.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *exc: Any) -> None:
        with self._turn:
            self._serving += 1
            self._turn.notify_all()
