"""Every endpoint through FastAPI's TestClient, and every refusal: a 4xx JSON message."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from deploy_helpers import digit_image, png_bytes

from dlcc.deploy.models import ImageModel

PREDICT = "/models/digits/predict"


@pytest.fixture
def client(make_client, digits_model):
    return make_client({"digits": digits_model})


def _refused(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}
    for word in words:
        assert word in body["message"], body["message"]
    return body


def test_health_ready_and_models(client, digits_model):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "models": ["digits"]}
    (described,) = client.get("/models").json()["models"]
    assert described["name"] == "digits"
    assert described["version"].startswith("sha256:")
    assert described["input"]["shape"] == ["batch", 1, 28, 28]
    assert described["labels"] == [str(i) for i in range(10)]
    assert described["metrics"] == {"test_accuracy": 0.5, "epochs": 1}


def test_ready_is_503_without_models(make_client):
    _refused(make_client({}).get("/ready"), 503, "no model")


def test_json_predict_matches_the_model_run_directly(client, digits_model):
    pixels = digit_image()
    body = client.post(PREDICT, json={"input": pixels.tolist(), "top_k": 4}).json()
    logits = digits_model.exported.run(((pixels - 0.1307) / 0.3081)[None, None])[0]
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert body["label"] == str(int(probabilities.argmax()))
    assert len(body["probabilities"]) == 4
    assert body["probabilities"][0]["probability"] == pytest.approx(probabilities.max(), abs=1e-5)
    ranked = [p["probability"] for p in body["probabilities"]]
    assert ranked == sorted(ranked, reverse=True)
    # (1, 28, 28) is the same sample as (28, 28)
    again = client.post(PREDICT, json={"input": pixels[None].tolist(), "top_k": 4}).json()
    assert again["probabilities"] == body["probabilities"]


def test_upload_png_and_jpeg_resized_and_inverted_as_documented(client):
    pixels = digit_image()
    reference = client.post(PREDICT, json={"input": pixels.tolist()}).json()
    png = client.post(PREDICT, files={"file": ("d.png", png_bytes(pixels), "image/png")})
    assert png.status_code == 200 and png.json()["label"] == reference["label"]
    # dark on light at 4x the size: resized to 28x28 (box filter) and inverted, same answer
    big = np.kron(1.0 - pixels, np.ones((4, 4)))
    resized = client.post(PREDICT, files={"file": ("d.png", png_bytes(big), "image/png")})
    assert resized.json()["probabilities"] == png.json()["probabilities"]
    jpeg = client.post(PREDICT, files={"file": ("d.jpg", png_bytes(big, fmt="JPEG"), "image/jpeg")})
    assert jpeg.status_code == 200 and jpeg.json()["label"] in [str(i) for i in range(10)]


def test_metrics_count_requests_latency_and_errors(client):
    client.post(PREDICT, json={"input": digit_image().tolist()})
    client.post(PREDICT, json={"input": [1, 2]})
    text = client.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    body = text.text
    route = 'route="/models/{name}/predict"'
    assert f'dlcc_requests_total{{{route},method="POST",status="200"}} 1.0' in body
    assert f'dlcc_request_errors_total{{{route},status="422"}} 1.0' in body
    assert f"dlcc_request_duration_seconds_count{{{route}}} 2" in body
    assert 'dlcc_batch_size_count{model="digits"} 1' in body
    assert "dlcc_models_loaded 1.0" in body


def test_openapi_schema_and_docs(client):
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/models/{name}/predict"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {"400", "401", "404", "413", "415", "422"} <= set(post["responses"])
    assert client.get("/docs").status_code == 200


def test_page_and_example(client):
    assert client.get("/").headers["content-type"].startswith("text/html")
    csv = client.get("/examples/ecg.csv").text.splitlines()
    assert csv[0] == "time_s,ecg_mv" and len(csv) == 3001


# ---- bad input: each item of the validation list ---------------------------------------


def test_wrong_content_type(client):
    _refused(client.post(PREDICT, content=b"abc", headers={"content-type": "text/plain"}), 415,
             "application/json or multipart/form-data", "text/plain")  # fmt: skip
    gif = png_bytes(digit_image(), fmt="GIF")
    _refused(client.post(PREDICT, files={"file": ("a.gif", gif, "image/gif")}), 415, "GIF")


def test_image_that_does_not_decode(client):
    _refused(client.post(PREDICT, files={"file": ("a.png", b"not an image", "image/png")}),
             422, "does not decode")  # fmt: skip
    truncated = png_bytes(digit_image())[:60]
    _refused(client.post(PREDICT, files={"file": ("a.png", truncated, "image/png")}), 422)
    _refused(client.post(PREDICT, files={"file": ("a.png", b"", "image/png")}), 422, "empty")


def test_wrong_dimensions(client):
    # JSON arrays must have the input size (uploads are resized instead)
    _refused(client.post(PREDICT, json={"input": np.zeros((20, 20)).tolist()}), 422,
             "resize the image to 28x28")  # fmt: skip
    # an image larger than the largest side is refused before it is decoded
    huge = png_bytes(np.zeros((8, 5000)))
    _refused(client.post(PREDICT, files={"file": ("a.png", huge, "image/png")}), 413, "5000x8")


def test_payload_over_the_size_limit(make_client, digits_model):
    small = make_client({"digits": digits_model}, max_body_bytes=4096)
    _refused(small.post(PREDICT, content=b"x" * 5000, headers={"content-type": "application/json"}),
             413, "4096 bytes")  # fmt: skip

    def chunks():  # no Content-Length: the limit holds while the body is read
        for _ in range(10):
            yield b"x" * 1000

    response = small.post(PREDICT, content=chunks(), headers={"content-type": "application/json"})
    _refused(response, 413, "limit")
    multipart = small.post(PREDICT, files={"file": ("a.png", b"\0" * 8000, "image/png")})
    _refused(multipart, 413)


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ({"input": [1, 2]}, 422, ["(28, 28)", "(2,)"]),
        ({"input": np.zeros((3, 28, 28)).tolist()}, 422, ["(3, 28, 28)"]),
        ({"input": [[1, 2], [3]]}, 422, ["ragged"]),
        ({"input": "pixels"}, 422, ["JSON array"]),
        ({"input": [["a"] * 28] * 28}, 422, ["numbers only"]),
        ({"input": []}, 422, ["empty"]),
        ({"pixels": []}, 422, ["'input'"]),
        ({"input": (np.ones((28, 28)) * 255).tolist()}, 422, ["[0, 1]", "255"]),
        ({"input": np.zeros((28, 28)).tolist(), "top_k": 11}, 422, ["1..10"]),
        ([1, 2, 3], 422, ["object"]),
    ],
)
def test_json_array_of_the_wrong_shape_or_type(client, payload, status, words):
    _refused(client.post(PREDICT, json=payload), status, *words)


def test_nan_values(client):
    rows = np.zeros((28, 28)).tolist()
    rows[3][4] = float("nan")
    body = json.dumps({"input": rows})  # Python writes NaN, which strict JSON lacks
    _refused(client.post(PREDICT, content=body, headers={"content-type": "application/json"}),
             422, "NaN or infinite")  # fmt: skip
    infinite = body.replace("NaN", "Infinity")
    _refused(client.post(PREDICT, content=infinite, headers={"content-type": "application/json"}),
             422, "NaN")  # fmt: skip


def test_not_json_unknown_model_and_missing_file(client):
    _refused(client.post(PREDICT, content=b"{", headers={"content-type": "application/json"}),
             400, "not valid JSON")  # fmt: skip
    _refused(client.post("/models/nope/predict", json={"input": []}), 404, "digits")
    _refused(client.post(PREDICT, data={"top_k": "2"}, files={"other": ("a", b"x")}), 422,
             "'file'")  # fmt: skip
    _refused(client.get("/nowhere"), 404)
    _refused(client.get(PREDICT), 405)


# ---- safety -------------------------------------------------------------------------------


def test_api_key_protects_predict_only(make_client, digits_model):
    keyed = make_client({"digits": digits_model}, api_key="s3cret")
    payload = {"input": digit_image().tolist()}
    _refused(keyed.post(PREDICT, json=payload), 401, "X-API-Key")
    _refused(keyed.post(PREDICT, json=payload, headers={"X-API-Key": "wrong"}), 401)
    assert keyed.post(PREDICT, json=payload, headers={"X-API-Key": "s3cret"}).status_code == 200
    assert keyed.get("/models").status_code == 200
    schemes = keyed.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"


def test_cors_is_off_unless_configured(make_client, digits_model):
    preflight = {"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"}
    closed = make_client({"digits": digits_model})
    assert "access-control-allow-origin" not in closed.options(PREDICT, headers=preflight).headers
    assert "access-control-allow-origin" not in closed.get("/models", headers=preflight).headers
    opened = make_client({"digits": digits_model}, cors_origins=["http://elsewhere.example"])
    answer = opened.options(PREDICT, headers=preflight)
    assert answer.headers["access-control-allow-origin"] == "http://elsewhere.example"


# ---- segmentation and ECG -----------------------------------------------------------------


def test_segmentation_answers_a_mask_png(make_client, unet_export):
    from PIL import Image

    model = ImageModel("cells", unet_export, str(unet_export.path))
    client = make_client({"cells": model})
    image = np.random.default_rng(0).random((40, 36))
    body = client.post("/models/cells/predict", json={"input": image.tolist()}).json()
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))))
    assert mask.shape == (40, 36) == tuple(body["shape"])
    assert set(np.unique(mask)) <= {0, 1}
    assert sum(body["pixel_counts"].values()) == 40 * 36
    upload = client.post("/models/cells/predict", files={"file": ("a.png", png_bytes(image))})
    assert upload.status_code == 200 and upload.json()["shape"] == [40, 36]
