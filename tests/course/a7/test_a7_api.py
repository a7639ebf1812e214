"""Part 4: the service end to end: your input checks, micro-batcher, answer and metrics
inside the real FastAPI app (`dlcc.deploy.create_app`), serving the digit classifier that
ships with dlcc.

The app and FastAPI's TestClient run where your code runs (`a7_helpers.api`); the responses
come back here. The expected probabilities are ONNX Runtime's, run here on the same model
file, and the digits are drawn here with PIL.
"""

from __future__ import annotations

import math

import numpy as np
from a7_helpers import api, api_concurrently, drawn_digit, png, reference_probabilities

PREDICT = "/models/digits/predict"


def test_json_prediction_matches_the_model_file():
    requests = [{"method": "POST", "path": PREDICT, "json": {"input": drawn_digit(d).tolist(),
                                                             "top_k": 3}}
                for d in (0, 1, 7)]  # fmt: skip
    answers = api(requests)
    for digit, answer in zip((0, 1, 7), answers, strict=True):
        assert answer["status"] == 200, answer
        body = answer["json"]
        expected = reference_probabilities(drawn_digit(digit))
        assert body["label"] == str(int(expected.argmax())) == str(digit)
        assert len(body["probabilities"]) == 3
        order = np.argsort(-expected, kind="stable")[:3]
        assert [row["label"] for row in body["probabilities"]] == [str(i) for i in order]
        for row in body["probabilities"]:
            assert math.isclose(row["probability"], expected[int(row["label"])], abs_tol=1e-5)


def test_uploaded_drawing_is_resized_inverted_and_classified():
    from PIL import Image

    answers = []
    for digit in (1, 7):
        paper = (
            1.0
            - np.asarray(
                Image.fromarray((drawn_digit(digit) * 255).astype(np.uint8)).resize((140, 140)),
                dtype=np.float64,
            )
            / 255.0
        )  # dark ink on light paper, 140 x 140: as a phone photo of a drawing
        data = png((paper * 255).round())
        request = {"method": "POST", "path": PREDICT, "file": ["digit.png", data, "image/png"]}
        answers.append(api([request], {"batching": False})[0])
    for digit, answer in zip((1, 7), answers, strict=True):
        assert answer["status"] == 200, answer
        assert answer["json"]["label"] == str(digit)


def test_bad_input_gets_a_4xx_with_a_json_message_through_the_api():
    image = drawn_digit(0)
    nan_image = image.tolist()
    nan_image[3][4] = math.nan
    requests = [
        {"method": "POST", "path": PREDICT, "json": {"input": nan_image}},
        {"method": "POST", "path": PREDICT, "json": {"input": image[:27].tolist()}},
        {"method": "POST", "path": PREDICT, "json": {"input": [["a"] * 28] * 28}},
        {"method": "POST", "path": PREDICT, "file": ["x.png", b"no pixels", "image/png"]},
        {"method": "POST", "path": PREDICT,
         "file": ["x.gif", png(np.zeros((28, 28)), format="GIF"), "image/gif"]},
        {"method": "POST", "path": PREDICT, "file": ["x.png", png(np.zeros((9000, 2))),
                                                     "image/png"]},
    ]  # fmt: skip
    expected = [(422, "not_finite"), (422, "bad_shape"), (422, "invalid_input"),
                (422, "bad_image"), (415, "unsupported_media_type"),
                (413, "image_too_large")]  # fmt: skip
    answers = api(requests, {"batching": False})
    for request, answer, (status, code) in zip(requests, answers, expected, strict=True):
        what = request.get("file", ["json"])[0]
        assert (answer["status"], answer.get("json", {}).get("error")) == (status, code), (
            f"{what}: {answer}"
        )
        assert answer["json"]["message"], "a message a person can act on"


def test_concurrent_requests_are_batched_and_counted_in_the_metrics():
    digits = [0, 1, 7] * 8
    bodies = [{"input": drawn_digit(d).tolist()} for d in digits]
    result = api_concurrently(bodies, {"max_batch": 8, "max_wait_ms": 200})
    for digit, answer in zip(digits, result["answers"], strict=True):
        assert answer["status"] == 200, answer
        assert answer["json"]["label"] == str(digit), "each request gets its own answer"
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(result["metrics"]):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    model = (("model", "digits"),)
    batches = samples[("dlcc_batch_size_count", model)]
    assert samples[("dlcc_batch_size_sum", model)] == 24, "24 samples in all"
    assert 3 <= batches < 24, f"24 requests at once, at most 8 a batch: {batches} calls"
    assert samples[("dlcc_batch_size_bucket", (("le", "8.0"), *model))] == batches
    predicted = (("method", "POST"), ("route", "/models/{name}/predict"), ("status", "200"))
    assert samples[("dlcc_requests_total", predicted)] == 24
    latency = (("route", "/models/{name}/predict"),)
    assert samples[("dlcc_request_duration_seconds_count", latency)] == 24
