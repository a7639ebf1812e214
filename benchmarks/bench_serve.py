"""Load test of `dlcc serve`: throughput and latency of the digit classifier, on loopback.

A bounded asyncio client: for each setting it starts a real uvicorn process
(`python -m dlcc serve --model digits=MODEL`, batching on, or --no-batching) on a free port
on 127.0.0.1, waits for /ready, then keeps exactly C requests in flight (concurrency C)
until --requests have been sent or --duration seconds have passed, whichever comes first,
and stops the server. Every request is a JSON 28x28 digit (`POST /models/digits/predict`).

The client shares the machine with the server, so its own cost is part of what is
measured. `--client raw` (the default) writes HTTP/1.1 keep-alive requests on C asyncio
connections and reads each response by its Content-Length: about a tenth of httpx's CPU per
request. `--client httpx` is the general-purpose client, kept to cross-check the raw one
(same server, same requests: the gap between them is client cost, not server speed).
Reported per setting: requests/s, p50/p95/p99 latency (ms), the error count (any status
but 200, or a failed connection), and the server's RSS before and after.

    python benchmarks/bench_serve.py                      # concurrency 1, 8, 32; batching on/off
    python benchmarks/bench_serve.py --soak 300 --concurrency 8   # 5 min steady; RSS start/end
    python benchmarks/bench_serve.py --requests 50 --duration 5 --concurrency 1,4   # a quick check

The figures are written to --json (default benchmarks/results/serve.json) with the machine.
Targets (the issue): at concurrency 32, >= 500 requests/s, p99 <= 100 ms, zero errors,
batching faster than no batching; the soak: zero errors, RSS growth <= 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "src" / "dlcc" / "deploy" / "default_models" / "digits.onnx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def start(model: Path, batching: bool, extra: list[str]):
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "dlcc", "serve", "--model", f"digits={model}",
               "--port", str(port), *extra]  # fmt: skip
    if not batching:
        command.append("--no-batching")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not become ready in 2 minutes")


def stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


async def load(url: str, concurrency: int, requests: int, duration: float, bodies,
               client: str = "raw") -> dict:  # fmt: skip
    """Keep `concurrency` requests in flight; stop at `requests` sent or `duration` s."""
    send = _raw_sender if client == "raw" else _httpx_sender
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + duration

    async with send(url, concurrency) as post:

        async def worker():
            nonlocal errors, sent
            while sent < requests and time.perf_counter() < deadline:
                body = bodies[sent % len(bodies)]
                sent += 1
                started = time.perf_counter()
                ok = await post(body)
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "concurrency": concurrency,
        "client": client,
        "requests": len(latencies),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "errors": errors,
    }


PREDICT = "/models/digits/predict"


@contextlib.asynccontextmanager
async def _httpx_sender(url: str, concurrency: int):
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def post(body: bytes) -> bool:
            try:
                response = await client.post(
                    PREDICT, content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        yield post


@contextlib.asynccontextmanager
async def _raw_sender(url: str, concurrency: int):
    """HTTP/1.1 keep-alive on a pool of `concurrency` connections; a response is read by
    its Content-Length (a chunked or closed response counts as an error and reconnects)."""
    host, port = url.removeprefix("http://").split(":")
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(concurrency):
        idle.put_nowait(None)  # a slot: connected on first use

    async def post(body: bytes) -> bool:
        connection = await idle.get()
        try:
            if connection is None:
                connection = await asyncio.open_connection(host, int(port))
            reader, writer = connection
            writer.write(
                f"POST {PREDICT} HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode() + body
            )  # fmt: skip
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if b"connection: close" in head.lower():
                writer.close()
                connection = None
            return status == 200
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError, StopIteration, ValueError):  # fmt: skip
            if connection is not None:
                connection[1].close()
            connection = None
            return False
        finally:
            idle.put_nowait(connection)

    try:
        yield post
    finally:
        while not idle.empty():
            connection = idle.get_nowait()
            if connection is not None:
                connection[1].close()


def bodies(count: int = 64) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [
        json.dumps({"input": np.round(rng.random((28, 28)), 3).tolist()}).encode()
        for _ in range(count)
    ]


def run_setting(model, batching, concurrency, requests, duration, extra, client="raw") -> dict:
    process, url = start(model, batching, extra)
    try:
        payloads = bodies()
        asyncio.run(load(url, concurrency, min(requests, 50), 5.0, payloads, client))  # warm-up
        rss_start = rss_mb(process.pid)
        result = asyncio.run(load(url, concurrency, requests, duration, payloads, client))
        result.update(batching=batching, rss_start_mb=round(rss_start, 1),
                      rss_end_mb=round(rss_mb(process.pid), 1))  # fmt: skip
    finally:
        stop(process)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated (1,8,32)")
    parser.add_argument("--requests", type=int, default=5000, help="per setting (5000)")
    parser.add_argument("--duration", type=float, default=30.0, help="s per setting, at most")
    parser.add_argument("--batching", choices=["both", "on", "off"], default="both")
    parser.add_argument(
        "--soak", type=float, default=None, metavar="SECONDS",
        help="one steady run of this long (batching on), RSS start and end",
    )  # fmt: skip
    parser.add_argument(
        "--client", choices=["raw", "httpx", "both"], default="raw",
        help="the load client (raw: lean HTTP/1.1; httpx: to cross-check; both)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/serve.json")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    modes = {"both": [True, False], "on": [True], "off": [False]}[args.batching]
    clients = ["raw", "httpx"] if args.client == "both" else [args.client]
    results = []
    if args.soak is not None:
        for concurrency in levels:
            result = run_setting(args.model, True, concurrency, 10**9, args.soak, [], clients[0])
            growth = (result["rss_end_mb"] - result["rss_start_mb"]) / result["rss_start_mb"]
            result.update(soak_s=args.soak, rss_growth=round(growth, 4))
            results.append(result)
            print(json.dumps(result), flush=True)
    else:
        for client in clients:
            for concurrency in levels:
                for batching in modes:
                    result = run_setting(args.model, batching, concurrency, args.requests,
                                         args.duration, [], client)  # fmt: skip
                    results.append(result)
                    print(json.dumps(result), flush=True)
    report = {
        "benchmark": "bench_serve",
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        # what uvicorn runs on (its "auto" picks httptools and uvloop when installed)
        "server_stack": {
            "http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        },
        "model": str(args.model),
        "results": results,
    }
    from dlcc.atomic import write_text_atomic

    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
