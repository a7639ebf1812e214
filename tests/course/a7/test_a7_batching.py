"""Part 2: micro-batching (`MicroBatcher._collect`, `MicroBatcher._run` and `group_by_shape`
in `dlcc.deploy.batching`).

The batcher runs where your code runs (`a7_helpers.run_batcher`), with a stand-in model that
doubles its input and records the shape of every batch; what each caller got back, and the
batches, come back here and are checked against what the rules in the docstrings make of the
same arrivals. The arrival times are far apart from the waits (hundreds of milliseconds), so
that a busy machine does not change which samples share a batch.
"""

from __future__ import annotations

import numpy as np
from a7_helpers import run_batcher

from dlcc.deploy.batching import group_by_shape


def samples(count: int, shape=(1, 2, 2)) -> list[np.ndarray]:
    return [np.full(shape, i + 1, dtype=np.float32) for i in range(count)]


def check_each_caller_got_its_row(result, sent):
    assert result["errors"] == [None] * len(sent), result["errors"]
    for i, (output, sample) in enumerate(zip(result["outputs"], sent, strict=True)):
        assert output is not None, f"caller {i} got nothing back"
        np.testing.assert_array_equal(
            output, sample * 2, err_msg=f"caller {i} did not get its own row of the output"
        )


def test_queued_samples_are_taken_up_to_max_batch():
    sent = samples(10)
    result = run_batcher([0.0] * 10, sent, max_batch=4, max_wait_ms=300)
    check_each_caller_got_its_row(result, sent)
    assert [shape[0] for shape in result["batches"]] == [4, 4, 2], (
        "10 samples waiting, at most 4 a batch: batches of 4, 4 and 2"
    )
    assert all(shape[1:] == [1, 2, 2] for shape in result["batches"]), "a batch is (N, C, H, W)"


def test_a_batch_waits_for_late_samples_only_until_max_wait_after_the_first():
    # Arrivals at 0, 0.25 and 0.5 s; each batch may wait 0.4 s after its first sample. The
    # first batch closes at 0.4 s with two samples; the third sample starts a new batch.
    # (A deadline counted from the last sample instead would put all three in one batch.)
    sent = samples(3)
    result = run_batcher([0.0, 0.25, 0.5], sent, max_batch=8, max_wait_ms=400)
    check_each_caller_got_its_row(result, sent)
    assert [shape[0] for shape in result["batches"]] == [2, 1]


def test_a_lone_sample_is_not_kept_waiting_for_a_full_batch():
    sent = samples(2)
    result = run_batcher([0.0, 0.6], sent, max_batch=64, max_wait_ms=50)
    check_each_caller_got_its_row(result, sent)
    assert [shape[0] for shape in result["batches"]] == [1, 1]


def test_a_full_batch_runs_without_waiting_out_max_wait():
    # max_batch 2 with a 5 s wait: each batch is full when its second sample arrives, so it
    # runs then, before the next samples arrive (0.4 s later).
    sent = samples(4)
    result = run_batcher([0.0, 0.1, 0.5, 0.6], sent, max_batch=2, max_wait_ms=5000)
    check_each_caller_got_its_row(result, sent)
    assert [shape[0] for shape in result["batches"]] == [2, 2]
    assert result["events"] == ["submit 1", "submit 2", "batch of 2", "submit 3", "submit 4",
                                "batch of 2"], "a full batch runs at once"  # fmt: skip


def test_run_counts_and_reports_each_batch():
    sent = samples(7)
    result = run_batcher([0.0] * 7, sent, max_batch=3, max_wait_ms=100)
    check_each_caller_got_its_row(result, sent)
    sizes = [shape[0] for shape in result["batches"]]
    assert sizes == [3, 3, 1]
    assert result["on_batch"] == sizes, "on_batch(size, seconds) after each call"
    assert all(seconds >= 0 for seconds in result["seconds"])
    assert result["counted"] == [3, 7], "batcher.batches and batcher.samples"


def test_an_error_reaches_every_caller_of_its_batch_and_the_batcher_goes_on():
    sent = samples(6)
    sent[4] = -sent[4]  # the second batch holds a negative sample: the model raises
    arrivals = [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    result = run_batcher(arrivals, sent, max_batch=3, max_wait_ms=200, fail_negative=True)
    assert result["errors"][:3] == [None] * 3
    for i in range(3):
        np.testing.assert_array_equal(result["outputs"][i], sent[i] * 2)
    for i in range(3, 6):
        assert result["errors"][i] == "ValueError: a negative sample in this batch", (
            f"caller {i}: every caller of the failed batch gets the model's exception"
        )
    late_samples = [*samples(3), -samples(1)[0]]
    late = run_batcher(
        [0.0, 0.0, 0.0, 0.5], late_samples, max_batch=3, max_wait_ms=200, fail_negative=True
    )
    assert late["errors"][:3] == [None] * 3 and late["errors"][3].startswith("ValueError")
    assert late["counted"] == [1, 3], "a failed call is not counted as run"


def test_samples_of_different_sizes_run_in_one_batch_per_size():
    small, large = np.ones((1, 4, 4), np.float32), np.ones((1, 8, 6), np.float32)
    sent = [small, large, 2 * small, 3 * large, 4 * small]
    result = run_batcher([0.0] * 5, sent, max_batch=8, max_wait_ms=100)
    check_each_caller_got_its_row(result, sent)
    assert result["batches"] == [[3, 1, 4, 4], [2, 1, 8, 6]], (
        "one batch per size, in the order each size first arrived"
    )


def test_group_by_shape_keeps_the_order_of_arrival():
    a, b, c = np.zeros((1, 2, 2)), np.zeros((1, 3, 2)), np.zeros((3, 2, 2))
    items = [(a, "p"), (b, "q"), (a, "r"), (c, "s"), (b, "t"), (a, "u")]
    groups = group_by_shape(items)
    tags = [[tag for _, tag in group] for group in groups]
    assert tags == [["p", "r", "u"], ["q", "t"], ["s"]]
    assert [[sample.shape for sample, _ in group] for group in groups][1] == [(1, 3, 2)] * 2
    assert group_by_shape([]) == []
