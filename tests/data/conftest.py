"""Fixtures for the data tests: an isolated HOME, tiny datasets, a local HTTP server.

No test here touches the internet: downloads are served by a `http.server` bound to
127.0.0.1 that the test starts and stops, or from ``file://`` URLs.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from data_factories import tiny_mnist_spec, write_tiny_idx_dataset

from dlcc.data import registry

# Captured at import, before any test's monkeypatching of the environment.
_SHARED_FROM_ENV = os.environ.get("DLCC_DATA_DIR", "").strip()
_SHARED_BESIDE_REPO = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def shared_datasets_dir() -> Path | None:
    """The shared dataset folder ($DLCC_DATA_DIR or ../shared/datasets), or None."""
    for candidate in (_SHARED_FROM_ENV, _SHARED_BESIDE_REPO):
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture
def shared_dir() -> Path:
    folder = shared_datasets_dir()
    if folder is None:
        pytest.skip(
            "shared datasets not found: set DLCC_DATA_DIR or provide ../shared/datasets "
            "beside the repository"
        )
    return folder


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every data test runs with an empty HOME and no DLCC_DATA_DIR (no real cache used)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DLCC_DATA_DIR", raising=False)
    return home


@pytest.fixture
def tiny_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A data dir with a tiny mnist/ whose checksums the (patched) registry knows."""
    data_dir = tmp_path / "data"
    checksums = write_tiny_idx_dataset(data_dir / "mnist")
    monkeypatch.setitem(registry.DATASETS, "mnist", tiny_mnist_spec(checksums))
    return SimpleNamespace(data_dir=data_dir, folder=data_dir / "mnist", checksums=checksums)


# ---------------------------------------------------------------- a local HTTP server


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder; ``/truncated/NAME`` promises NAME's full size but sends half."""

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/truncated/"):
            payload = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A server on 127.0.0.1 (random port) serving ``tmp_path/served``; stopped afterwards."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield SimpleNamespace(root=served, url=f"http://127.0.0.1:{server.server_port}/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
