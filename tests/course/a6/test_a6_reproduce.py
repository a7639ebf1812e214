"""Part 3: reproducing a run (`compare_metrics` in `dlcc.runs.reproduce`): the rule "equal
means equal to the last digit" on figures written in the test (floats one ulp apart, true
against 1, 1 against 1.0, a key on one side only, timings shown and not compared), then on
real runs trained here: the same settings twice give identical metrics, another learning
rate and seed does not."""

from __future__ import annotations

import math

from a6_helpers import read_json

from dlcc.runs.reproduce import compare_metrics


def rows_by_key(rows) -> dict:
    return {row["key"]: dict(row) for row in rows}


def test_compare_metrics_is_exact_to_the_last_digit():
    before = {"test_accuracy": 0.1 + 0.2, "test_loss": 0.5, "epochs": 3}
    after = {"test_accuracy": 0.3, "test_loss": 0.5, "epochs": 3}
    rows = rows_by_key(compare_metrics(before, after))
    assert rows["test_accuracy"]["status"] == "differs"
    assert rows["test_loss"]["status"] == "equal" and rows["epochs"]["status"] == "equal"
    nudged = {**before, "test_loss": math.nextafter(0.5, 1.0)}
    assert rows_by_key(compare_metrics(before, nudged))["test_loss"]["status"] == "differs"
    assert rows["test_accuracy"]["original"] == 0.1 + 0.2
    assert rows["test_accuracy"]["reproduced"] == 0.3


def test_compare_metrics_compares_json_types():
    before = {"stopped_early": True, "best_epoch": 1, "parameters": 10, "test_checkpoint": "best"}
    after = {"stopped_early": 1, "best_epoch": 1.0, "parameters": 10, "test_checkpoint": "best"}
    rows = rows_by_key(compare_metrics(before, after))
    assert rows["stopped_early"]["status"] == "differs", "true is not 1"
    assert rows["best_epoch"]["status"] == "differs", "1 is not 1.0"
    assert rows["parameters"]["status"] == "equal"
    assert rows["test_checkpoint"]["status"] == "equal"
    nested = compare_metrics({"report": {"a": 1, "b": [1, 2]}}, {"report": {"b": [1, 2], "a": 1}})
    assert rows_by_key(nested)["report"]["status"] == "equal", "a dict's key order is not a value"


def test_compare_metrics_keys_on_one_side_and_timings():
    before = {"epochs": 2, "train_seconds": 3.5, "test_loss": 0.1, "samples_per_second": 900.0}
    after = {"test_f1": 0.7, "epochs": 2, "train_seconds": 4.25, "samples_per_second": 800.0}
    rows = list(compare_metrics(before, after))
    assert [row["key"] for row in rows] == [
        "epochs", "train_seconds", "test_loss", "samples_per_second", "test_f1",
    ]  # fmt: skip
    got = rows_by_key(rows)
    assert got["train_seconds"]["status"] == "timing"
    assert got["samples_per_second"]["status"] == "timing"
    assert got["train_seconds"]["reproduced"] == 4.25
    assert (got["test_loss"]["status"], got["test_loss"]["reproduced"]) == ("differs", "(absent)")
    assert (got["test_f1"]["status"], got["test_f1"]["original"]) == ("differs", "(absent)")
    assert set(rows[0]) == {"key", "original", "reproduced", "status"}


def test_a_run_trained_twice_reproduces(runs):
    first = read_json(runs["first"] / "metrics.json")
    again = read_json(runs["again"] / "metrics.json")
    rows = rows_by_key(compare_metrics(first, again))
    assert set(rows) == set(first)
    assert all(row["status"] in ("equal", "timing") for row in rows.values()), rows
    assert rows["test_accuracy"]["status"] == "equal"
    assert rows["train_seconds"]["status"] == "timing"


def test_another_run_does_not_reproduce(runs):
    first = read_json(runs["first"] / "metrics.json")
    other = read_json(runs["other"] / "metrics.json")
    rows = rows_by_key(compare_metrics(first, other))
    differing = {key for key, row in rows.items() if row["status"] == "differs"}
    expected = {
        key for key in first
        if "seconds" not in key and "per_second" not in key and first[key] != other.get(key)
    }  # fmt: skip
    assert "test_loss" in expected and differing == expected
