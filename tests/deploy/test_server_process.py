"""`dlcc serve` as a real uvicorn process on 127.0.0.1: started and stopped by the test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import digit_image

SRC = Path(__file__).resolve().parents[2] / "src"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(*args: str, timeout: float = 120.0):
    """(process, base url) of `python -m dlcc serve ARGS` once /ready answers 200."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dlcc", "serve", "--port", str(port), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dlcc serve exited: {process.stdout.read()}")
        try:
            if httpx.get(url + "/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_server(process)
    raise AssertionError("dlcc serve did not become ready")


def stop_server(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def server(digits_export):
    process, url = start_server("--model", f"digits={digits_export.path}", "--api-key", "k1")
    yield url
    stop_server(process)
    assert process.returncode is not None


def test_real_server_answers_on_loopback(server):
    assert httpx.get(server + "/health").json() == {"status": "ok"}
    payload = {"input": digit_image().tolist()}
    refused = httpx.post(server + "/models/digits/predict", json=payload)
    assert refused.status_code == 401 and "X-API-Key" in refused.json()["message"]
    answer = httpx.post(
        server + "/models/digits/predict", json=payload, headers={"X-API-Key": "k1"}
    )
    assert answer.status_code == 200 and answer.json()["label"] in [str(i) for i in range(10)]
    assert "dlcc_requests_total" in httpx.get(server + "/metrics").text


def test_serve_refuses_a_missing_model_in_one_line(tmp_path):
    from dlcc.cli import main

    assert main(["serve", "--model", f"x={tmp_path / 'none.onnx'}"]) == 2
