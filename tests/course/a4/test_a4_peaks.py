"""Part 4: peak picking (`pick_peaks` in `dlcc.ecg.preprocess`) against a brute-force
reference written here, on random traces with ties and plateaus, on cases worked by hand
(plateaus, ties, the ends of the trace, the refractory spacing), and on a heatmap of known
beats (`dlcc.ecg.preprocess.heatmap`).
"""

from __future__ import annotations

import numpy as np
from a4_helpers import brute_force_peaks, check_peaks

from dlcc.ecg.preprocess import heatmap

# dlcc.ecg.preprocess.FS, the internal rate of windows and heatmaps (written out: when graded,
# the module's attributes are handles to the learner's process, not numbers)
FS = 250.0


def random_traces(count, seed, fs):
    """(trace, threshold, refractory_s) cases: every other trace has only 4 levels, so that
    ties and plateaus are common."""
    rng = np.random.default_rng(seed)
    for trial in range(count):
        n = int(rng.integers(3, 120))
        x = rng.random(n) if trial % 2 else rng.integers(0, 4, n) / 3.0
        yield x, float(rng.uniform(0, 1)), float(rng.uniform(0, 40 / fs))


def test_pick_peaks_matches_a_brute_force_reference():
    for index, (x, threshold, refractory_s) in enumerate(random_traces(150, 2, FS)):
        check_peaks(
            f"random trace {index}",
            x,
            FS,
            threshold,
            refractory_s,
            brute_force_peaks(x, FS, threshold, refractory_s),
        )


def test_pick_peaks_plateaus_ties_and_edges():
    def case(what, x, expected, threshold=0.5, refractory_s=0.0):
        check_peaks(what, np.asarray(x, float), FS, threshold, refractory_s, expected)

    case("one peak", [0, 1, 0], [1])
    case("the first and last samples are never peaks", [1, 0, 0.7, 0, 1], [2])
    case("a plateau of 3: its middle", [0, 0.8, 0.8, 0.8, 0], [2])
    case("a plateau of 2: the left one", [0, 0.8, 0.8, 0], [1])
    case("a plateau of 4: the left middle", [0, 0.9, 0.9, 0.9, 0.9, 0.1], [2])
    case("a plateau that runs to the end is no peak", [0, 0.8, 0.8, 0.8], [])
    case("a shoulder (a step up, then higher) is no peak", [0, 0.6, 0.6, 0.9, 0], [3])
    case("a peak exactly at the threshold is kept", [0, 0.5, 0, 0.49, 0], [1])
    case("two peaks, no refractory period", [0, 0.7, 0, 0.9, 0], [1, 3])
    case(
        "equal peaks closer than the gap: the earlier one",
        [0, 0.7, 0, 0.7, 0],
        [1],
        refractory_s=4 / FS,
    )
    case(
        "the higher of two close peaks, even when later",
        [0, 0.7, 0, 0.9, 0],
        [3],
        refractory_s=4 / FS,
    )
    case("no peaks at all", [0.2, 0.3, 0.4], [])


def test_pick_peaks_refractory_spacing():
    x = np.zeros(400)
    x[[50, 100, 149, 250, 300, 301, 302, 380]] = [0.9, 0.8, 0.95, 0.7, 0.6, 0.0, 0.65, 0.6]
    # gap = ceil(0.2 s * 250 Hz) = 50 samples
    # 149 is kept (highest); 100 is 49 from it: dropped; 50 is 99 from it: kept.
    # 250 is 101 from 149: kept; 302 (0.65) is 52 from 250: kept; 300 is 2 from 302: dropped;
    # 380 is 78 from 302: kept.
    check_peaks(
        "peaks 49, 50 and more samples apart, gap 50", x, FS, 0.5, 0.2, [50, 149, 250, 302, 380]
    )
    y = np.zeros(200)
    y[[40, 90, 140]] = [0.9, 0.8, 0.9]  # exactly 50 apart: all kept
    check_peaks("peaks exactly the gap apart", y, FS, 0.5, 0.2, [40, 90, 140])
    check_peaks("the same peaks, a gap of 51", y, FS, 0.5, 0.201, [40, 140])
    check_peaks("at 360 Hz, 0.25 s is 90 samples", y, 360.0, 0.5, 0.25, [40, 140])
    z = np.zeros(300)
    z[[20, 119, 218]] = [0.9, 0.8, 0.9]  # 99 apart
    # 0.275 * 360.0 is 99.00000000000001 in floating point: still a gap of 99 samples
    check_peaks("at 360 Hz, 0.275 s is 99 samples", z, 360.0, 0.5, 0.275, [20, 119, 218])


def test_pick_peaks_finds_a_heatmaps_beats():
    beats = np.array([30, 120, 190, 400, 700, 764])  # >= 0.25 s = 62.5 samples apart
    check_peaks(
        "a heatmap of 6 beats", heatmap(beats, 800).astype(np.float64), FS, 0.5, 0.25, beats
    )
    # beats of different heights, one below the threshold, and overlapping Gaussians
    beats = np.array([40, 200, 260, 500])
    trace = heatmap(beats, 600).astype(np.float64)
    heights = np.ones(600)
    heights[150:230], heights[450:] = 0.8, 0.3
    check_peaks(
        "a heatmap with beats of heights 1, 0.8, 1 and 0.3",
        trace * heights,
        FS,
        0.5,
        0.2,
        [40, 200, 260],
    )
