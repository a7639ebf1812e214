"""Helpers shared by the Assignment 7 graded tests (imported by name: this folder is on
sys.path). Nothing here calls the learner's regions to make an expected value: the oracles
are PIL, ONNX Runtime run on the shipped model file, float64 formulas and prometheus_client's
own parser, all in the tests' process.

What must run where the learner's code runs is marked `learner_side`: an `InputError` is
read there and returned as data (its class is not a builtin, so it would not cross as
itself); the micro-batcher, its event loop and thread run there; the FastAPI app and its
test client run there, and only the responses (status, headers, body) come back. Under
plain pytest the same helpers run in place.
"""

from __future__ import annotations

import asyncio
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import dlcc
from dlcc.course.remote import learner_side

# The digit classifier shipped with the package (each process finds its own package's copy).
DIGITS_ONNX = Path(dlcc.__file__).resolve().parent / "deploy" / "default_models" / "digits.onnx"


# ---- Part 1: refusals, as data --------------------------------------------------------


@learner_side
def checked(function: str, *args, **kwargs) -> dict:
    """``dlcc.deploy.inputs.<function>(*args, **kwargs)``: {"value": what it returned}, or
    {"status", "code", "message"} of the InputError it raised."""
    from dlcc.deploy import inputs
    from dlcc.deploy.errors import InputError

    try:
        value = getattr(inputs, function)(*args, **kwargs)
    except InputError as error:
        return {"status": error.status, "code": error.code, "message": str(error.message)}
    return {"value": value}


def png(pixels: np.ndarray, mode: str | None = None, format: str = "PNG") -> bytes:
    """uint8 pixels (H, W) or (H, W, 3) as the bytes of an image file."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode).save(buffer, format=format)
    return buffer.getvalue()


# ---- Part 2: the micro-batcher, on the learner's side ------------------------------------


@learner_side
def run_batcher(
    arrivals: list[float],
    samples: list,
    *,
    max_batch: int,
    max_wait_ms: float,
    fail_negative: bool = False,
) -> dict:
    """Submit samples[i] at arrivals[i] seconds after the start, each from its own task, to a
    `MicroBatcher` whose model doubles its input (and raises ValueError on a batch holding a
    negative value, with `fail_negative`). Returns, as data:
    outputs (each caller's answer, or None), errors ("ValueError: ..." or None), batches (the
    shape of every batch the model ran, in order), on_batch (the sizes it was told of),
    counted ([batcher.batches, batcher.samples]), events (in order: "submit V" as sample
    V (its first value) is submitted, "batch of N" as the model is called)."""
    from dlcc.deploy.batching import MicroBatcher

    batches, told, events = [], [], []

    def model(batch: np.ndarray) -> np.ndarray:
        batches.append(list(batch.shape))
        events.append(f"batch of {len(batch)}")
        if fail_negative and (batch < 0).any():
            raise ValueError("a negative sample in this batch")
        return batch * 2.0

    async def one(batcher, delay, sample):
        await asyncio.sleep(delay)
        events.append(f"submit {float(np.asarray(sample).flat[0]):g}")
        try:
            return await batcher.submit(np.asarray(sample, dtype=np.float32)), None
        except NotImplementedError:
            raise  # a stub still in place: the test reports it as such
        except Exception as error:
            return None, f"{type(error).__name__}: {error}"

    async def main():
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(
                model, max_batch=max_batch, max_wait_ms=max_wait_ms, executor=pool,
                on_batch=lambda size, seconds: told.append([size, seconds]),
            )  # fmt: skip
            try:
                callers = [one(batcher, d, s) for d, s in zip(arrivals, samples, strict=True)]
                answers = await asyncio.wait_for(asyncio.gather(*callers), timeout=30)
            finally:
                await batcher.close()
        return answers, [batcher.batches, batcher.samples]

    answers, counted = asyncio.run(main())
    return {
        "outputs": [None if out is None else np.asarray(out) for out, _ in answers],
        "errors": [error for _, error in answers],
        "batches": batches,
        "on_batch": [size for size, _ in told],
        "seconds": [seconds for _, seconds in told],
        "counted": counted,
        "events": events,
    }


# ---- Part 4: the whole server, on the learner's side -------------------------------------

_MODELS: dict = {}


def _digits_model():
    if "digits" not in _MODELS:
        from dlcc.deploy.models import load_models

        _MODELS.update(load_models({"digits": str(DIGITS_ONNX)}))
    return _MODELS


@learner_side
def api(requests: list[dict], settings: dict | None = None) -> list[dict]:
    """Send `requests` to `create_app` serving the shipped digit classifier, one after
    another through FastAPI's TestClient. A request: {"method", "path"} plus "json" (a value
    sent as JSON), "content" (bytes) with "headers", or "file" ([name, bytes, type]) with
    "data" (other form fields). Answers: [{"status", "content_type", "json" or "text"}]."""
    from fastapi.testclient import TestClient

    from dlcc.deploy import ServeSettings, create_app

    app = create_app(_digits_model(), ServeSettings(**(settings or {})))
    answers = []
    with TestClient(app) as client:
        for request in requests:
            kwargs = {"headers": request.get("headers")}
            if "json" in request:
                kwargs["content"] = json.dumps(request["json"]).encode()
                headers = {"content-type": "application/json", **(kwargs["headers"] or {})}
                kwargs["headers"] = headers
            elif "content" in request:
                kwargs["content"] = request["content"]
            if "file" in request:
                name, data, kind = request["file"]
                kwargs["files"] = {"file": (name, data, kind)}
                kwargs["data"] = request.get("data") or {}
            response = client.request(request["method"], request["path"], **kwargs)
            answers.append(_answer(response))
    return answers


@learner_side
def api_concurrently(bodies: list, settings: dict) -> dict:
    """POST each JSON body to /models/digits/predict at once (an async client on the app),
    then GET /metrics. {"answers": [...], "metrics": the /metrics text}."""
    import httpx

    from dlcc.deploy import ServeSettings, create_app

    app = create_app(_digits_model(), ServeSettings(**settings))

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(
                *(client.post("/models/digits/predict", json=body) for body in bodies)
            )
            metrics = await client.get("/metrics")
        for batcher in app.state.batchers.values():
            await batcher.close()
        return [_answer(r) for r in responses], metrics.text

    answers, metrics = asyncio.run(main())
    return {"answers": answers, "metrics": metrics}


def _answer(response) -> dict:
    kind = response.headers.get("content-type", "")
    answer = {"status": response.status_code, "content_type": kind}
    if kind.startswith("application/json"):
        answer["json"] = response.json()
    else:
        answer["text"] = response.text
    return answer


# ---- oracles (the tests' process) --------------------------------------------------------


def softmax64(z) -> np.ndarray:
    """Softmax in float64 by log-sum-exp: the oracle of the answer's probabilities."""
    z = np.asarray(z, dtype=np.float64)
    log_total = z.max() + np.log(np.exp(z - z.max()).sum())
    return np.exp(z - log_total)


def reference_probabilities(pixels: np.ndarray) -> np.ndarray:
    """The shipped model's softmax probabilities for (28, 28) pixels in [0, 1]: ONNX Runtime
    on the file itself, normalised with the statistics its metadata records; float64."""
    import onnxruntime

    metadata = json.loads(DIGITS_ONNX.with_name(DIGITS_ONNX.name + ".json").read_text())
    mean = metadata["normalisation"]["mean"][0]
    std = metadata["normalisation"]["std"][0]
    x = (np.asarray(pixels, dtype=np.float32) - np.float32(mean)) / np.float32(std)
    session = onnxruntime.InferenceSession(str(DIGITS_ONNX), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {session.get_inputs()[0].name: x[None, None]})
    return softmax64(logits[0])


def drawn_digit(digit: int) -> np.ndarray:
    """A digit drawn here with PIL as the page's canvas draws it, as MNIST-like (28, 28)
    pixels in [0, 1]: a white stroke on black, box-downscaled."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(canvas)
    strokes = {
        0: [(140, 50), (200, 90), (210, 170), (170, 235), (110, 235), (70, 170), (80, 90),
            (140, 50)],
        1: [(140, 40), (140, 240)],
        7: [(70, 55), (210, 55), (130, 240)],
    }[digit]  # fmt: skip
    pen.line(strokes, fill=255, width=22, joint="curve")
    small = canvas.resize((28, 28), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0
