"""A bounded load test of `lqer serve`, on 127.0.0.1 only: N requests from C concurrent
clients against a server started here, then stopped.

Each request uploads a real P-ADSD patch to /api/predict (with --scan-every K, every K-th
request scans a whole 512x512 ADSD frame instead). It prints errors (target: none), p50 and
p95 latency, requests per second, and the server's peak resident memory (VmHWM). The
baseline in the same run is one request at a time: latency without queueing.

    python benchmarks/serve_load.py                        # 200 requests, 50 clients
    python benchmarks/serve_load.py --requests 400 --clients 100 --scan-every 20
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_memory_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--scan-every", type=int, default=0)
    parser.add_argument("--checkpoint", default="lqer-padsd")
    args = parser.parse_args()
    patch = sorted((DATA / "P-ADSD/validation/positive").glob("*.png"))[0].read_bytes()
    frame = (DATA / "ADSD-sample/images/14_002_5_0016.bmp").read_bytes()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    lqer = [sys.executable, "-m", "lqer", "serve", "--checkpoint", args.checkpoint,
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(lqer, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")

        def request(k: int) -> tuple[float, int]:
            scan = args.scan_every and k % args.scan_every == 0
            endpoint, data = ("scan", frame) if scan else ("predict", patch)
            start = time.perf_counter()
            try:
                status = httpx.post(f"{url}/api/{endpoint}", files={"file": data},
                                    timeout=600).status_code  # fmt: skip
            except httpx.HTTPError:
                status = -1
            return time.perf_counter() - start, status

        alone = [request(1)[0] for _ in range(10)]
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(request, range(args.requests)))
        wall = time.perf_counter() - started
        latencies = sorted(t for t, _ in results)
        errors = sum(status != 200 for _, status in results)
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        print(f"lqer serve on 127.0.0.1, {args.checkpoint}; {os.cpu_count()} CPUs")
        print(
            f"  {args.requests} requests from {args.clients} clients"
            f"{f', every {args.scan_every}th a frame scan' if args.scan_every else ''}"
        )
        print(f"  errors {errors}; {args.requests / wall:.1f} requests/s")
        single = statistics.median(alone)
        print(f"  latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; one at a time "
              f"{single * 1000:.0f} ms (p50 / one at a time {p50 / single:.1f}x)")  # fmt: skip
        print(f"  server peak memory {peak_memory_mib(server.pid):.0f} MiB")
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
