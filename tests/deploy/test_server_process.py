"""`dlcc serve` as a real uvicorn process on 127.0.0.1: started and stopped by the test."""

from __future__ import annotations

import httpx
import pytest
from deploy_helpers import digit_image, start_server, stop_server


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
