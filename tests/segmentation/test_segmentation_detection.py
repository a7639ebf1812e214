"""Cell-centre detection: known centres, dense oracles, and an independent matching."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse import csgraph

from dlcc.errors import DataError
from dlcc.segmentation.detection import (
    detection_scores,
    detection_scores_many,
    distance_transform_peaks,
    find_peaks,
    gaussian_heatmap,
    match_points,
    object_centres,
)


def test_object_centres_of_two_squares_are_their_centres():
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:7, 3:8] = True  # 5x5: centre (4, 5)
    mask[10:14, 12:18] = True  # 4x6: centre (11.5, 14.5)
    mask[18, 0] = True  # a one-pixel speck, under min_area
    np.testing.assert_allclose(object_centres(mask), [[4, 5], [11.5, 14.5]])
    assert object_centres(mask, min_area=1).shape == (3, 2)
    assert object_centres(mask, min_area=25).tolist() == [[4.0, 5.0]]


def test_object_centres_are_four_connected_and_empty_is_zero_by_two():
    mask = np.zeros((4, 4), dtype=int)
    mask[0:2, 0:2] = 1
    mask[2:4, 2:4] = 1  # touches the first square only at a corner
    np.testing.assert_allclose(object_centres(mask, min_area=1), [[0.5, 0.5], [2.5, 2.5]])
    empty = object_centres(np.zeros((5, 5), dtype=bool))
    assert empty.shape == (0, 2) and empty.dtype == np.float64


def dense_heatmap(shape, centres, sigma):
    """The oracle: every Gaussian over the whole map, no window."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    bumps = [
        np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma**2)) for row, col in centres
    ]
    return np.max(bumps, axis=0)


@pytest.mark.parametrize("seed", range(3))
def test_gaussian_heatmap_matches_the_dense_formula(seed):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(10, 40)), int(rng.integers(10, 40)))
    centres = rng.uniform(-3, max(shape) + 3, size=(6, 2))  # some outside the map
    sigma = float(rng.uniform(0.8, 4.0))
    heatmap = gaussian_heatmap(shape, centres, sigma)
    assert heatmap.shape == shape and heatmap.dtype == np.float32
    assert heatmap.min() >= 0 and heatmap.max() <= 1
    # The window drops values below exp(-8), about 3.4e-4.
    np.testing.assert_allclose(heatmap, dense_heatmap(shape, centres, sigma), atol=3.5e-4)


def test_gaussian_heatmap_is_one_at_integer_centres_and_zero_far_away():
    heatmap = gaussian_heatmap((30, 30), np.array([[5, 6], [20, 22]]), sigma=2.0)
    assert heatmap[5, 6] == 1.0 and heatmap[20, 22] == 1.0
    assert heatmap[5, 7] == pytest.approx(np.exp(-1 / 8), rel=1e-6)
    assert heatmap[29, 0] == 0.0
    assert not gaussian_heatmap((8, 8), np.zeros((0, 2))).any()


def test_peaks_of_a_heatmap_recover_the_centres_exactly():
    centres = np.array([[6, 7], [20, 25], [30, 8]], dtype=float)
    heatmap = gaussian_heatmap((40, 36), centres, sigma=3.0)
    points, scores = find_peaks(heatmap, min_distance=4, threshold=0.3)
    order = np.lexsort((points[:, 1], points[:, 0]))
    np.testing.assert_array_equal(points[order], centres)
    np.testing.assert_allclose(scores, 1.0)


def test_peaks_are_sorted_by_score_and_thresholded():
    low = gaussian_heatmap((30, 30), [[5, 5]], 2.0) * 0.5
    high = gaussian_heatmap((30, 30), [[20, 20]], 2.0)
    faint = gaussian_heatmap((30, 30), [[5, 22]], 2.0) * 0.2
    heatmap = np.maximum(np.maximum(low, high), faint)
    points, scores = find_peaks(heatmap, min_distance=3, threshold=0.3)
    np.testing.assert_array_equal(points, [[20, 20], [5, 5]])
    np.testing.assert_allclose(scores, [1.0, 0.5], rtol=1e-6)
    assert len(find_peaks(heatmap, threshold=1.5)[0]) == 0


def test_a_plateau_gives_one_point_at_its_centroid():
    heatmap = np.zeros((12, 12))
    heatmap[3:6, 3:6] = 0.8  # 3x3 flat top
    heatmap[8:10, 8:10] = 0.9  # 2x2 flat top
    points, scores = find_peaks(heatmap, min_distance=2, threshold=0.5)
    np.testing.assert_allclose(points, [[8.5, 8.5], [4, 4]])
    np.testing.assert_allclose(scores, [0.9, 0.8])


def test_equal_peaks_closer_than_min_distance_keep_one():
    heatmap = np.zeros((10, 10))
    heatmap[4, 2] = heatmap[4, 5] = 1.0  # not touching, 3 px apart
    points, _ = find_peaks(heatmap, min_distance=4, threshold=0.5)
    assert points.tolist() == [[4.0, 2.0]]  # ties keep the first in raster order
    assert len(find_peaks(heatmap, min_distance=2, threshold=0.5)[0]) == 2


def test_match_points_counts_a_pair_at_the_tolerance_but_not_beyond():
    truth = np.array([[0.0, 0.0], [50.0, 50.0]])
    predicted = np.array([[3.0, 4.0], [50.0, 55.01]])  # 5.0 away, and 5.01 away
    assert match_points(predicted, truth, tolerance=5.0) == (1, 1, 1)
    assert match_points(predicted, truth, tolerance=5.02) == (2, 0, 0)


def test_match_points_is_optimal_where_greedy_nearest_first_is_not():
    truth = np.array([[0.0, 0.0], [0.0, 6.0]])
    # Greedy takes the closest pair first (the first prediction with the first truth,
    # 2 px), and the second prediction then has nothing within 5 px: 1 match. The
    # optimum pairs the second prediction (3 px) with the first truth, and the first
    # prediction (4 px) with the second: 2 matches.
    predicted = np.array([[0.0, 2.0], [0.0, -3.0]])
    assert match_points(predicted, truth, tolerance=5.0) == (2, 0, 0)


def test_match_points_with_empty_inputs():
    some = np.array([[1.0, 1.0], [9.0, 9.0]])
    assert match_points(np.zeros((0, 2)), some) == (0, 0, 2)
    assert match_points(some, []) == (0, 2, 0)
    assert match_points([], np.zeros((0, 2))) == (0, 0, 0)


@pytest.mark.parametrize("seed", range(4))
def test_match_count_equals_an_independent_maximum_matching(seed):
    # Oracle: Hopcroft-Karp maximum bipartite matching on the "within tolerance" graph.
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 40, size=(int(rng.integers(5, 30)), 2))
    predicted = rng.uniform(0, 40, size=(int(rng.integers(5, 30)), 2))
    tolerance = float(rng.uniform(2, 8))
    distance = np.linalg.norm(predicted[:, None, :] - truth[None, :, :], axis=-1)
    adjacency = sparse.csr_matrix(distance <= tolerance)
    matching = csgraph.maximum_bipartite_matching(adjacency, perm_type="column")
    expected = int(np.count_nonzero(matching >= 0))
    tp, fp, fn = match_points(predicted, truth, tolerance)
    assert (tp, fp, fn) == (expected, len(predicted) - expected, len(truth) - expected)


def test_detection_scores_and_their_conventions_for_empty_sides():
    truth = np.array([[0.0, 0.0], [20.0, 20.0], [40.0, 40.0]])
    predicted = np.array([[1.0, 0.0], [21.0, 21.0], [70.0, 70.0], [90.0, 0.0]])
    scores = detection_scores(predicted, truth)
    assert scores == {
        "precision": pytest.approx(2 / 4),
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(2 * 2 / (2 * 2 + 2 + 1)),
        "tp": 2,
        "fp": 2,
        "fn": 1,
    }
    none = np.zeros((0, 2))
    both_empty = detection_scores(none, none)
    assert (both_empty["precision"], both_empty["recall"], both_empty["f1"]) == (1.0, 1.0, 1.0)
    missed = detection_scores(none, truth)
    assert (missed["precision"], missed["recall"], missed["f1"]) == (0.0, 0.0, 0.0)
    invented = detection_scores(predicted, none)
    assert (invented["precision"], invented["recall"], invented["f1"]) == (0.0, 0.0, 0.0)


def test_detection_scores_many_pools_the_counts():
    truth_a = np.array([[0.0, 0.0], [20.0, 20.0]])
    pred_a = np.array([[0.0, 1.0]])  # 1 tp, 1 fn
    truth_b = np.array([[5.0, 5.0]])
    pred_b = np.array([[5.0, 5.0], [30.0, 30.0], [60.0, 60.0]])  # 1 tp, 2 fp
    result = detection_scores_many([(pred_a, truth_a), (pred_b, truth_b)])
    assert (result["tp"], result["fp"], result["fn"]) == (2, 2, 1)
    assert result["precision"] == pytest.approx(2 / 4)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(4 / 7)
    assert [image["tp"] for image in result["per_image"]] == [1, 1]
    assert result["per_image"][1]["precision"] == pytest.approx(1 / 3)


def test_distance_transform_peaks_splits_two_touching_discs():
    rows, cols = np.mgrid[0:32, 0:44]
    centres = np.array([[16.0, 12.0], [16.0, 29.0]])
    radius = 9.0
    inside = np.zeros((32, 44), dtype=bool)
    for row, col in centres:
        inside |= (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
    assert len(object_centres(inside)) == 1  # touching: one component, so one "cell"
    probability = np.where(inside, 0.9, 0.1)
    points, scores = distance_transform_peaks(probability, min_distance=4)
    assert len(points) == 2
    order = np.argsort(points[:, 1])
    np.testing.assert_allclose(points[order], centres, atol=1.0)
    assert (scores > 6).all()  # about the discs' inscribed radius, blurred a little
    assert len(distance_transform_peaks(np.zeros((10, 10)))[0]) == 0


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: object_centres(np.zeros((2, 2, 2), bool)), ["2-D", "(2, 2, 2)"]),
        (lambda: object_centres(np.full((3, 3), 0.5)), ["boolean mask", "labels == 1"]),
        (lambda: gaussian_heatmap((0, 5), [[1, 1]]), ["positive integers", "(0, 5)"]),
        (lambda: gaussian_heatmap((5, 5), [[1, 1]], sigma=0), ["sigma > 0"]),
        (lambda: gaussian_heatmap(5, [[1, 1]]), ["shape (H, W)", "image.shape[:2]"]),
        (lambda: gaussian_heatmap((5, 5), [1, 2, 3]), ["(K, 2)", "(3,)"]),
        (lambda: find_peaks(np.full((3, 3), np.nan)), ["NaN"]),
        (lambda: find_peaks(np.zeros((3, 3)), min_distance=0), ["min_distance", ">= 1"]),
        (lambda: find_peaks(np.zeros(5)), ["2-D", "(5,)"]),
        (lambda: match_points([[0, 0]], [[0, 0]], tolerance=-1), ["tolerance >= 0"]),
        (lambda: match_points([[0, np.inf]], [[0, 0]]), ["infinite"]),
        (lambda: match_points([[0, 1], [2]], [[0, 0]]), ["(K, 2)", "different lengths"]),
        (lambda: distance_transform_peaks(np.full((4, 4), 3.0)), ["[0, 1]", "softmax"]),
        (lambda: detection_scores_many([np.zeros((1, 2))]), ["pairs", "zip"]),
    ],
)
def test_bad_inputs_raise_a_data_error_that_says_what_to_do(call, words):
    with pytest.raises(DataError) as caught:
        call()
    for word in words:
        assert word in str(caught.value)
