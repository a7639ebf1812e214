"""Part 5: reading a sweep (`ranked_trials` in `dlcc.tracking.compare`, behind `dlcc track
compare --sweep`). These tests depend only on the file `dlcc sweep` writes, sweep.json (built
here in its format by `a6_helpers.sweep_summary`), not on the sweep command itself: pruned,
failed and running trials are left out, both directions, ties by trial number."""

from __future__ import annotations

from a6_helpers import sweep_summary

from dlcc.tracking.compare import ranked_trials

TRIALS = [
    (0, "COMPLETE", 0.61, {"optim.lr": 0.01}),
    (1, "PRUNED", 0.95, {"optim.lr": 0.2}),  # a pruned trial's last value: not a result
    (2, "COMPLETE", 0.83, {"optim.lr": 0.003}),
    (3, "FAIL", None, {"optim.lr": 1.0}),
    (4, "COMPLETE", 0.72, {"optim.lr": 0.001}),
    (5, "RUNNING", None, {"optim.lr": 0.05}),
    (6, "COMPLETE", 0.83, {"optim.lr": 0.004}),
]


def numbers(trials) -> list[int]:
    return [trial["number"] for trial in trials]


def test_ranked_trials_maximize():
    ranked = ranked_trials(sweep_summary("maximize", TRIALS))
    assert numbers(ranked) == [2, 6, 4, 0]
    assert ranked[0]["params"] == {"optim.lr": 0.003}


def test_ranked_trials_minimize():
    trials = [(n, s, v, p) for n, s, v, p in TRIALS]
    ranked = ranked_trials(sweep_summary("minimize", trials))
    assert numbers(ranked) == [0, 4, 2, 6]
    assert [trial["value"] for trial in ranked] == [0.61, 0.72, 0.83, 0.83]


def test_ranked_trials_with_nothing_completed():
    trials = [(0, "PRUNED", 0.5, {}), (1, "FAIL", None, {}), (2, "COMPLETE", None, {})]
    assert list(ranked_trials(sweep_summary("maximize", trials))) == []
