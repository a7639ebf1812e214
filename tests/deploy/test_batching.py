"""Micro-batching: concurrent requests share inference calls, and get their own answers."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from dlcc.deploy import ServeSettings, create_app
from dlcc.deploy.batching import MicroBatcher


def test_batcher_gathers_and_returns_each_callers_row():
    calls = []

    def run(batch):
        calls.append(len(batch))
        return batch * 2

    async def main():
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(run, max_batch=8, max_wait_ms=20, executor=pool)
            samples = [np.full((2,), i, dtype=np.float32) for i in range(20)]
            outputs = await asyncio.gather(*(batcher.submit(s) for s in samples))
            await batcher.close()
        return samples, outputs

    samples, outputs = asyncio.run(main())
    for sample, output in zip(samples, outputs, strict=True):
        np.testing.assert_array_equal(output, sample * 2)
    assert sum(calls) == 20 and max(calls) == 8 and len(calls) == 3


def test_batcher_passes_errors_to_every_caller_and_goes_on():
    def run(batch):
        if (batch < 0).any():
            raise ValueError("negative")
        return batch

    async def main():
        with ThreadPoolExecutor(1) as pool:
            batcher = MicroBatcher(run, max_batch=4, max_wait_ms=20, executor=pool)
            bad = await asyncio.gather(
                batcher.submit(np.ones(1)), batcher.submit(-np.ones(1)), return_exceptions=True
            )
            good = await batcher.submit(np.ones(1))
            await batcher.close()
        return bad, good

    bad, good = asyncio.run(main())
    assert all(isinstance(e, ValueError) for e in bad)
    assert good.tolist() == [1.0]


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_http_requests_share_batches_with_one_by_one_results(digits_model, batching):
    settings = ServeSettings(batching=batching, max_batch=16, max_wait_ms=50)
    app = create_app({"digits": digits_model}, settings)
    rng = np.random.default_rng(0)
    images = [rng.random((28, 28)) for _ in range(24)]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            sent = [
                client.post("/models/digits/predict", json={"input": x.tolist(), "top_k": 10})
                for x in images
            ]
            return [r.json() for r in await asyncio.gather(*sent)]

    answers = asyncio.run(main())
    metrics = app.state.metrics
    batches = metrics.batch_size.count("digits")
    assert metrics.batch_size.total("digits") == 24
    if batching:
        assert batches < 24
    else:
        assert batches == 24
    for image, answer in zip(images, answers, strict=True):
        alone = digits_model.answer(digits_model.run_batch(digits_model.from_json(
            {"input": image.tolist()})[0][None])[0], 10)  # fmt: skip
        got = {p["label"]: p["probability"] for p in answer["probabilities"]}
        want = {p["label"]: p["probability"] for p in alone["probabilities"]}
        assert answer["label"] == alone["label"]
        for label, p in want.items():
            assert got[label] == pytest.approx(p, abs=1e-5)
