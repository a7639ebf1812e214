"""Helpers of the server tests: images, and a real `dlcc serve` process on loopback."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

SRC = Path(__file__).resolve().parents[2] / "src"


def digit_image(value: int = 7, size: int = 28) -> np.ndarray:
    """(size, size) float pixels in [0, 1]: a bar, light on dark, roughly a '1'."""
    image = np.zeros((size, size))
    image[size // 5 : size - size // 5, size // 2 - 2 : size // 2 + 2] = 1.0
    return image


def png_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    array = (np.clip(pixels, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


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
