"""EC57 beat matching: the 1-D greedy matching is optimal (checked against the Hungarian
solver), edges are excluded as documented, and the table and JSON are complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from dlcc.ecg.scoring import BeatScore, match_beats, match_pairs, pooled, score_table, to_json
from dlcc.errors import DataError


def _hungarian_matches(reference, detected, tolerance) -> int:
    """The most pairs within tolerance, by linear_sum_assignment on a 0/1 cost."""
    if len(reference) == 0 or len(detected) == 0:
        return 0
    near = np.abs(reference[:, None] - detected[None, :]) <= tolerance  # (R, D)
    rows, cols = linear_sum_assignment(~near)  # cost 0 for a possible pair, 1 otherwise
    return int(near[rows, cols].sum())


def test_match_pairs_is_as_good_as_the_hungarian_solver():
    rng = np.random.default_rng(0)
    for _ in range(500):
        reference = rng.integers(0, 300, int(rng.integers(0, 25)))
        detected = rng.integers(0, 300, int(rng.integers(0, 25)))  # duplicates allowed
        tolerance = float(rng.integers(0, 30))
        pairs = match_pairs(reference, detected, tolerance)
        assert len(pairs) == _hungarian_matches(reference, detected, tolerance)
        assert len(set(pairs[:, 0])) == len(pairs) == len(set(pairs[:, 1]))  # one-to-one
        assert np.all(np.abs(reference[pairs[:, 0]] - detected[pairs[:, 1]]) <= tolerance)


def test_match_beats_counts_and_rates():
    fs = 250.0
    reference = np.array([100, 300, 500, 700, 900])
    detected = np.array([110, 337, 338, 600, 890, 2000])  # 37 samples = 148 ms: inside
    score = match_beats(reference, detected, fs)
    assert (score.tp, score.fp, score.fn) == (3, 3, 2)
    assert score.se == pytest.approx(3 / 5) and score.ppv == pytest.approx(3 / 6)
    assert score.f1 == pytest.approx(2 * 0.6 * 0.5 / 1.1)
    assert match_beats(reference, detected, fs, tolerance_s=0.04).tp == 2
    assert match_beats(np.array([], int), np.array([], int), fs).f1 == 1.0
    assert match_beats(reference, np.array([], int), fs).se == 0.0


def test_edge_exclusion_counts_only_beats_inside():
    fs = 100.0
    reference = np.array([50, 400, 960])
    detected = np.array([60, 999])  # 999 is unmatched and inside the last second
    score = match_beats(reference, detected, fs, exclude_edges_s=1.0, length=1000)
    assert (score.tp, score.fp, score.fn) == (0, 0, 1)  # only the beat at 400 counts
    edge_pair = match_beats(np.array([105]), np.array([95]), fs, exclude_edges_s=1.0)
    assert (edge_pair.tp, edge_pair.fp, edge_pair.fn) == (1, 0, 0)  # no FN + FP at the edge


def test_table_and_json_list_every_row_and_the_gross_figures():
    a = BeatScore.from_counts(98, 1, 2)
    b = BeatScore.from_counts(50, 0, 0)
    rows = [("100", "neurokit", a), ("synth-1", "neurokit", b)]
    table = score_table(rows)
    lines = table.splitlines()
    assert lines[0].split() == [
        "record",
        "detector",
        "beats",
        "TP",
        "FP",
        "FN",
        "Se%",
        "PPV%",
        "F1%",
    ]
    assert lines[1].split()[:6] == ["100", "neurokit", "100", "98", "1", "2"]
    assert lines[-1].split()[:6] == ["gross", "neurokit", "150", "148", "1", "2"]
    parsed = json.loads(to_json(rows))
    assert parsed["rows"][0]["record"] == "100" and parsed["rows"][0]["tp"] == 98
    assert parsed["gross"]["neurokit"] == pooled([a, b]).as_dict()
    with pytest.raises(DataError, match="BeatScore"):
        score_table([("100", "x", 3)])


def test_bad_inputs_are_data_errors():
    with pytest.raises(DataError, match="integer sample indices"):
        match_beats(np.array([1.5]), np.array([1]), 250.0)
    with pytest.raises(DataError, match="fs > 0"):
        match_beats(np.array([1]), np.array([1]), 0)
