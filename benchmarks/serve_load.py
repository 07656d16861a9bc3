"""A bounded load test of `lqer serve`, on 127.0.0.1 only: N requests from C concurrent
clients against a server started here, then stopped.

Requests upload real P-ADSD patches to /api/predict; with --scan-every K every K-th request
scans a whole ADSD frame instead (512x512, or resized to --frame-side), and with --leave F that
fraction of the clients leaves early: a client timeout of --leave-after seconds closes the
connection, as a user who gives up does. It prints errors (target: none; 503s, the bounded
queue's answer, apart), p50 and p95 latency of the answers, requests per second, what the
server did (scans computed of those asked, work dropped, forward passes) and its peak resident
memory (VmHWM). The baseline in the same run is one request at a time.

    python benchmarks/serve_load.py                        # 200 requests, 50 clients
    python benchmarks/serve_load.py --scan-every 20 --frame-side 1024 --leave 0.5
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from lqer.device import cpu_name

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@dataclass(frozen=True)
class Outcome:
    seconds: float
    status: int | str  # an HTTP status, "left" (the client's timeout) or "failed"
    leaves: bool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_memory_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def frame_bytes(side: int) -> bytes:
    path = DATA / "ADSD-sample/images/14_002_5_0016.bmp"
    if side == 512:
        return path.read_bytes()
    buffer = io.BytesIO()
    Image.open(path).convert("L").resize((side, side), Image.Resampling.BILINEAR).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def start_server(checkpoint: str, port: int) -> subprocess.Popen:
    lqer = [sys.executable, "-m", "lqer", "serve", "--checkpoint", checkpoint,
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(lqer, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--scan-every", type=int, default=0)
    parser.add_argument("--frame-side", type=int, default=512)
    parser.add_argument("--leave", type=float, default=0.0, help="fraction of clients")
    parser.add_argument("--leave-after", type=float, default=1.0, help="their timeout, s")
    parser.add_argument("--checkpoint", default="lqer-padsd")
    args = parser.parse_args()
    patches = [p.read_bytes() for p in
               sorted((DATA / "P-ADSD/validation/positive").glob("*.png"))[:20]]  # fmt: skip
    frame = frame_bytes(args.frame_side)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    leavers = round(args.leave * args.clients)

    def request(k: int, client: int | None = None) -> Outcome:
        scan = args.scan_every and k % args.scan_every == 0
        endpoint, data = ("scan", frame) if scan else ("predict", patches[k % len(patches)])
        leaves = client is not None and client < leavers
        timeout = args.leave_after if leaves else 600
        start = time.perf_counter()
        try:
            answer = httpx.post(f"{url}/api/{endpoint}", files={"file": data}, timeout=timeout)
            status = answer.status_code
        except httpx.TimeoutException:
            status = "left" if leaves else "failed"
        except httpx.HTTPError:
            status = "failed"
        return Outcome(time.perf_counter() - start, status, leaves)

    server = start_server(args.checkpoint, port)
    try:
        alone = statistics.median(request(1).seconds for _ in range(10))
        scan_alone = request(0).seconds if args.scan_every else None
        before = httpx.get(f"{url}/api/load").json()
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:  # request k from client k mod C
            results = list(pool.map(lambda k: request(k, k % args.clients), range(args.requests)))
        wall = time.perf_counter() - started
        after = httpx.get(f"{url}/api/load").json()
        report(args, results, wall, alone, scan_alone, before, after, leavers)
        print(f"  server peak memory {peak_memory_mib(server.pid):.0f} MiB")
    finally:
        server.terminate()
        server.wait(30)


def report(args, results, wall, alone, scan_alone, before, after, leavers) -> None:
    answered = [r.seconds for r in results if r.status == 200]
    busy = sum(r.status == 503 for r in results)
    left = sum(r.status == "left" for r in results)
    errors = len(results) - len(answered) - busy - left
    done = {k: after[k] - before[k] for k in after}
    frames = f"a {args.frame_side}x{args.frame_side} frame scan"
    mix = f", every {args.scan_every}th {frames}" if args.scan_every else ""
    mix += f", {leavers} clients leaving after {args.leave_after:g} s" if leavers else ""
    print(f"lqer serve on 127.0.0.1, {args.checkpoint}; {cpu_name()}")
    print(f"  {args.requests} requests from {args.clients} clients{mix}")
    print(f"  errors {errors}; 503 (busy, Retry-After) {busy}; left early {left}; "
          f"{args.requests / wall:.1f} requests/s")  # fmt: skip
    single = f"one at a time {alone * 1000:.0f} ms"
    if scan_alone is not None:
        single += f", {frames} alone {scan_alone * 1000:,.0f} ms"
    p50, p95 = percentile(answered, 0.5), percentile(answered, 0.95)
    print(f"  latency of the {len(answered)} answers p50 {p50 * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms; {single}")  # fmt: skip
    scans_asked = sum(1 for k in range(args.requests) if args.scan_every and
                      k % args.scan_every == 0)  # fmt: skip
    print(f"  server: {done['scans']} of {scans_asked} scans computed, work of {done['dropped']} "
          f"requests dropped as their clients left, {done['over_time']} over time; "
          f"{done['predicted']} predictions in {done['passes']} forward passes; "
          f"at most {after['peak_requests']} requests in line")  # fmt: skip


if __name__ == "__main__":
    main()
