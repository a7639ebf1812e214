"""Assignment 7's hidden tests: the public tests' rules on random sizes and values."""

from __future__ import annotations

import math

import numpy as np
from a7_helpers import checked, run_batcher, softmax64

from dlcc.deploy.metrics import Histogram
from dlcc.deploy.models import activate, ranked_classes


def test_numeric_array_random_shapes_and_non_finite_counts():
    rng = np.random.default_rng(70)
    for _ in range(6):
        shape = tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 4))))
        value = rng.normal(size=shape) * 10
        result = checked("numeric_array", value.tolist(), "'input'", str(shape))
        np.testing.assert_array_equal(result["value"], value)
        bad = value.copy().ravel()
        count = int(rng.integers(1, bad.size + 1))
        bad[rng.choice(bad.size, count, replace=False)] = rng.choice([math.nan, math.inf], count)
        refused = checked("numeric_array", bad.reshape(shape).tolist(), "'input'", str(shape))
        assert (refused.get("status"), refused.get("code")) == (422, "not_finite")
        assert str(count) in refused["message"]


def test_batches_of_random_sizes_and_shapes():
    rng = np.random.default_rng(71)
    for _ in range(3):
        max_batch = int(rng.integers(1, 6))
        shapes = [(1, 2, 2), (1, 3, 3)]
        picks = rng.integers(0, 2, size=int(rng.integers(4, 12)))
        sent = [np.full(shapes[p], i + 1, dtype=np.float32) for i, p in enumerate(picks)]
        result = run_batcher([0.0] * len(sent), sent, max_batch=max_batch, max_wait_ms=50)
        for output, sample in zip(result["outputs"], sent, strict=True):
            np.testing.assert_array_equal(output, sample * 2)
        expected = []
        for start in range(0, len(sent), max_batch):  # arrival chunks, then sizes by arrival
            chunk = list(picks[start : start + max_batch])
            for p in dict.fromkeys(chunk):
                expected.append([chunk.count(p), *shapes[p]])
        assert result["batches"] == expected


def test_histogram_random_values_against_numpy_counts():
    rng = np.random.default_rng(72)
    bounds = (0.001, 0.01, 0.1, 1.0)
    values = np.concatenate([10.0 ** rng.uniform(-4, 1, size=200), bounds])
    h = Histogram("r", "Random.", bounds)
    for v in values:
        h.observe(float(v))
    lines = list(h.render())
    for bound in bounds:
        expected = int((values <= bound).sum())
        assert f'r_bucket{{le="{bound!r}"}} {expected}' in lines, bound
    assert f'r_bucket{{le="+Inf"}} {len(values)}' in lines
    assert f"r_count {len(values)}" in lines


def test_softmax_and_ranking_random_logits():
    rng = np.random.default_rng(73)
    for _ in range(5):
        z = rng.normal(size=int(rng.integers(2, 12))) * rng.choice([1.0, 50.0, 400.0])
        p = np.asarray(activate(z, "softmax"))
        np.testing.assert_allclose(p, softmax64(z), rtol=1e-10, atol=1e-300)
        k = int(rng.integers(1, len(z) + 1))
        labels = [f"c{i}" for i in range(len(z))]
        ranked = ranked_classes(p, labels, k)
        assert [row["index"] for row in ranked] == list(np.argsort(-p, kind="stable")[:k])
