"""Part 3: the answer and the metrics (`activate` and `ranked_classes` in
`dlcc.deploy.models`; `Histogram.observe` and `Histogram.render` in `dlcc.deploy.metrics`).

The probabilities are checked against float64 formulas written here (log-sum-exp for the
softmax); the Prometheus text is read back with prometheus_client's own parser, the one a
Prometheus-compatible scraper in Python uses, and compared with counts made here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from a7_helpers import softmax64

from dlcc.deploy.metrics import Histogram
from dlcc.deploy.models import activate, ranked_classes

# ---- activate and ranked_classes --------------------------------------------------------


def test_softmax_matches_the_formula():
    rng = np.random.default_rng(3)
    z = rng.normal(size=10) * 3
    p = np.asarray(activate(z, "softmax"))
    np.testing.assert_allclose(p, softmax64(z), rtol=1e-12, atol=1e-15)
    assert abs(p.sum() - 1.0) < 1e-12


def test_softmax_of_huge_logits_does_not_overflow():
    z = np.array([1000.0, 999.0, -1000.0, 0.0])
    with np.errstate(over="raise", invalid="raise"):
        p = np.asarray(activate(z, "softmax"))
    assert np.isfinite(p).all(), f"softmax of {z} gave {p}"
    np.testing.assert_allclose(p, softmax64(z), rtol=1e-12, atol=1e-300)


def test_sigmoid_for_independent_labels():
    z = np.array([-800.0, -3.0, 0.0, 2.5, 800.0])
    with np.errstate(over="raise", invalid="raise"):
        p = np.asarray(activate(z, "sigmoid"))
    expected = np.array([0.0, 1 / (1 + math.exp(3.0)), 0.5, 1 / (1 + math.exp(-2.5)), 1.0])
    np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-300)


def test_ranked_classes_most_probable_first_with_ties_by_index():
    p = np.array([0.1, 0.3, 0.05, 0.3, 0.25])
    labels = ["a", "b", "c", "d", "e"]
    ranked = ranked_classes(p, labels, 4)
    assert [row["label"] for row in ranked] == ["b", "d", "e", "a"], "ties: lower index first"
    assert [row["index"] for row in ranked] == [1, 3, 4, 0]
    assert ranked[0]["probability"] == 0.3
    assert all(type(row["index"]) is int and type(row["probability"]) is float for row in ranked)
    assert [row["label"] for row in ranked_classes(p, labels, 1)] == ["b"]
    assert len(ranked_classes(p, labels, 5)) == 5


# ---- the histogram ----------------------------------------------------------------------


def parse(lines: list[str]) -> dict:
    """{(sample name, labels as sorted tuples): value}, read by prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families("\n".join(lines) + "\n"):
        assert family.type == "histogram", family
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_histogram_counts_cumulative_buckets_sum_and_count():
    h = Histogram("t_seconds", "Test latency.", (0.01, 0.1, 1.0), ("route",))
    values = [0.004, 0.01, 0.05, 0.1, 0.3, 2.0, 7.5]  # 0.01 and 0.1 sit on their bounds
    for v in values:
        h.observe(v, "/x")
    h.observe(0.2, "/y")
    found = parse(list(h.render()))
    route = ("route", "/x")
    buckets = {
        bound: found[("t_seconds_bucket", tuple(sorted((route, ("le", bound)))))]
        for bound in ("0.01", "0.1", "1.0", "+Inf")
    }
    assert buckets == {"0.01": 2, "0.1": 4, "1.0": 5, "+Inf": 7}, (
        "le is inclusive and the buckets are cumulative"
    )
    assert found[("t_seconds_count", (route,))] == 7
    assert found[("t_seconds_sum", (route,))] == pytest.approx(sum(values), rel=1e-12)
    assert found[("t_seconds_count", (("route", "/y"),))] == 1
    assert found[("t_seconds_bucket", (("le", "0.1"), ("route", "/y")))] == 0
    assert found[("t_seconds_bucket", (("le", "1.0"), ("route", "/y")))] == 1


def test_histogram_text_lines_and_order():
    h = Histogram("b_size", "Batch sizes.", (1, 4), ("model",))
    for v in (1, 3, 3, 9):
        h.observe(v, "digits")
    assert list(h.render()) == [
        "# HELP b_size Batch sizes.",
        "# TYPE b_size histogram",
        'b_size_bucket{model="digits",le="1.0"} 1',
        'b_size_bucket{model="digits",le="4.0"} 3',
        'b_size_bucket{model="digits",le="+Inf"} 4',
        'b_size_sum{model="digits"} 16.0',
        'b_size_count{model="digits"} 4',
    ]
    assert h.count("digits") == 4 and h.total("digits") == 16


def test_histogram_without_labels_and_a_label_that_needs_escaping():
    h = Histogram("plain", "No labels.", (0.5,))
    h.observe(0.25)
    h.observe(0.75)
    found = parse(list(h.render()))
    assert found[("plain_bucket", (("le", "0.5"),))] == 1
    assert found[("plain_bucket", (("le", "+Inf"),))] == 2
    assert found[("plain_count", ())] == 2
    odd = Histogram("odd", "Odd label.", (1.0,), ("route",))
    odd.observe(0.5, 'a"b\\c')
    assert parse(list(odd.render()))[("odd_count", (("route", 'a"b\\c'),))] == 1
