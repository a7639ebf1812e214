"""Shared bits of the tracking tests: a tiny recipe, and starting and stopping servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# The digits MLP of the training tests: two epochs in about a second.
RECIPE = {
    "data": {"dataset": "digits", "batch_size": 64, "val_size": 157},
    "model": {"name": "mlp", "options": {"hidden": [32]}},
    "optim": {"name": "sgd", "lr": 0.05},
    "schedule": {"name": "none"},
    "train": {"epochs": 2, "deterministic": True, "threads": 1, "progress": False},
}


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {seconds:.0f}s")


def start_process(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """A server in its own process group (so stopping it stops its workers too)."""
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})}
    return subprocess.Popen(
        args,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=environment,
    )


def mlflow_server(db: Path, artifacts: Path, port: int, log: Path) -> subprocess.Popen:
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    return start_process(
        [
            mlflow,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--artifacts-destination",
            str(artifacts),
            "--workers",
            "1",
        ],
        log,
    )
