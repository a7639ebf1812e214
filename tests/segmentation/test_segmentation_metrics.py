"""Segmentation metrics against hand-computed answers and scikit-learn as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from dlcc.course.fences import parse_regions, strip_solutions
from dlcc.errors import DataError
from dlcc.segmentation import metrics
from dlcc.segmentation.metrics import (
    boundary_f1,
    confusion_matrix,
    dice_per_class,
    iou_per_class,
    pixel_error,
    score_image,
    score_images,
)

# A 4x4 case worked by hand. Class 1: |T| = 6, |P| = 5, |P ∩ T| = 4;
# class 0: |T| = 10, |P| = 11, |P ∩ T| = 9.
TRUTH = np.array(
    [
        [0, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 1, 1, 0],
        [0, 1, 1, 0],
    ]
)
PRED = np.array(
    [
        [0, 0, 0, 1],
        [0, 1, 1, 0],
        [0, 1, 0, 0],
        [0, 1, 0, 0],
    ]
)


def test_hand_made_case_dice_iou_pixel_error_and_confusion():
    np.testing.assert_allclose(dice_per_class(PRED, TRUTH, 2), [18 / 21, 8 / 11])
    np.testing.assert_allclose(iou_per_class(PRED, TRUTH, 2), [9 / 12, 4 / 7])
    assert pixel_error(PRED, TRUTH) == pytest.approx(3 / 16)
    np.testing.assert_array_equal(confusion_matrix(PRED, TRUTH, 2), [[9, 1], [2, 4]])
    assert confusion_matrix(PRED, TRUTH, 2).dtype == np.int64


@pytest.mark.parametrize("seed", range(5))
def test_random_labels_agree_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    num_classes = int(rng.integers(2, 6))
    shape = tuple(int(size) for size in rng.integers(3, 20, size=2))
    truth = rng.integers(0, num_classes, size=shape)
    pred = np.where(rng.random(shape) < 0.6, truth, rng.integers(0, num_classes, size=shape))
    labels = list(range(num_classes))
    flat_truth, flat_pred = truth.ravel(), pred.ravel()
    np.testing.assert_array_equal(
        confusion_matrix(pred, truth, num_classes),
        sk.confusion_matrix(flat_truth, flat_pred, labels=labels),
    )
    # Dice is the per-class F1; IoU is the per-class Jaccard score. A class absent from
    # both maps is 1.0 by our convention, and sklearn's zero_division=1.0 says the same.
    expected_dice = sk.f1_score(
        flat_truth, flat_pred, labels=labels, average=None, zero_division=1.0
    )
    expected_iou = sk.jaccard_score(
        flat_truth, flat_pred, labels=labels, average=None, zero_division=1.0
    )
    np.testing.assert_allclose(dice_per_class(pred, truth, num_classes), expected_dice)
    np.testing.assert_allclose(iou_per_class(pred, truth, num_classes), expected_iou)
    assert pixel_error(pred, truth) == pytest.approx(1 - sk.accuracy_score(flat_truth, flat_pred))


def test_a_class_absent_from_both_maps_scores_one():
    truth = np.array([[0, 1], [1, 0]])
    pred = np.array([[0, 1], [0, 0]])
    dice = dice_per_class(pred, truth, 3)
    iou = iou_per_class(pred, truth, 3)
    assert dice[2] == 1.0 and iou[2] == 1.0
    assert dice[1] == pytest.approx(2 * 1 / 3) and iou[1] == pytest.approx(1 / 2)


def test_a_class_in_one_map_only_scores_zero():
    truth = np.zeros((3, 3), dtype=int)
    pred = truth.copy()
    pred[1, 1] = 1
    assert dice_per_class(pred, truth, 2)[1] == 0.0
    assert iou_per_class(pred, truth, 2)[1] == 0.0


def square_mask(top, left, size, shape=(20, 20)):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


def test_boundary_f1_of_a_mask_against_itself_is_one():
    mask = square_mask(4, 4, 8)
    assert boundary_f1(mask, mask) == 1.0
    assert boundary_f1(mask, mask, tolerance=0) == 1.0


def test_boundary_f1_of_a_one_pixel_shift():
    mask = square_mask(4, 4, 8)
    shifted = np.roll(mask, 1, axis=1)
    assert boundary_f1(shifted, mask, tolerance=2) == 1.0
    assert boundary_f1(shifted, mask, tolerance=1) == 1.0
    # Tolerance 0 by hand: each outline has 28 pixels (8 x 8 square). They share the top
    # and bottom rows' columns 5..11 (7 + 7 pixels), and truth's right edge (column 11,
    # rows 5..10) lies inside the shifted square, not on its outline: 14 of 28 agree.
    assert boundary_f1(shifted, mask, tolerance=0) == pytest.approx(14 / 28)


def test_boundary_pixels_are_those_with_a_four_neighbour_outside():
    mask = square_mask(1, 1, 3, shape=(5, 5))
    expected = mask.copy()
    expected[2, 2] = False  # the centre's four neighbours are all inside
    np.testing.assert_array_equal(metrics.boundary_pixels(mask), expected)
    # The frame of the image is not a boundary: a full mask has none.
    assert not metrics.boundary_pixels(np.ones((4, 4), dtype=bool)).any()


def test_boundary_f1_empty_cases():
    empty = np.zeros((6, 6), dtype=bool)
    assert boundary_f1(empty, empty) == 1.0
    assert boundary_f1(empty, square_mask(1, 1, 3, shape=(6, 6))) == 0.0
    assert boundary_f1(square_mask(1, 1, 3, shape=(6, 6)), empty) == 0.0


def test_boundary_f1_of_a_thin_membrane_is_near_the_membrane_itself():
    # A 2-pixel membrane line: every membrane pixel has a neighbour outside, so the
    # boundary is the whole membrane. A prediction 5 px away scores 0 at tolerance 2.
    truth = np.zeros((16, 16), dtype=bool)
    truth[:, 6:8] = True
    np.testing.assert_array_equal(metrics.boundary_pixels(truth), truth)
    far = np.roll(truth, 5, axis=1)
    assert boundary_f1(far, truth, tolerance=2) == 0.0


def test_score_image_names_every_figure_and_uses_the_boundary_class():
    scores = score_image(PRED, TRUTH, 2, class_names=["membrane", "cell"])
    assert set(scores) == {
        "pixel_error",
        "dice_membrane",
        "dice_cell",
        "iou_membrane",
        "iou_cell",
        "boundary_f1_membrane",
    }
    assert scores["dice_cell"] == pytest.approx(8 / 11)
    assert scores["iou_membrane"] == pytest.approx(9 / 12)
    assert scores["pixel_error"] == pytest.approx(3 / 16)
    assert scores["boundary_f1_membrane"] == boundary_f1(PRED == 0, TRUTH == 0)
    assert all(isinstance(value, float) for value in scores.values())
    default = score_image(PRED, TRUTH, 2, boundary_class=None)
    assert set(default) == {"pixel_error", "dice_0", "dice_1", "iou_0", "iou_1"}


def test_score_image_reports_the_dice_a_learner_writes(monkeypatch):
    monkeypatch.setattr(metrics, "dice_per_class", lambda pred, truth, k: np.full(k, 0.25))
    assert score_image(PRED, TRUTH, 2)["dice_1"] == 0.25


def test_score_images_means_each_figure_over_images():
    perfect = score_image(TRUTH, TRUTH, 2)
    result = score_images([PRED, TRUTH], [TRUTH, TRUTH], 2)
    assert len(result["per_image"]) == 2
    assert result["per_image"][1] == perfect
    assert result["mean"]["dice_1"] == pytest.approx((8 / 11 + 1) / 2)
    assert result["mean"]["pixel_error"] == pytest.approx(3 / 32)


def test_dice_region_is_a_valid_exercise_that_stubs_cleanly():
    source = open(metrics.__file__, encoding="utf-8").read()
    regions = parse_regions(source, "metrics.py")
    assert [region.function for region in regions] == ["dice_per_class"]
    assert regions[0].description.startswith("dice_metric:")
    student = strip_solutions(source, "metrics.py", "a0")
    namespace: dict = {}
    exec(compile(student, "metrics.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="dice_metric"):
        namespace["dice_per_class"](PRED, TRUTH, 2)
    # Everything else still works without the region's code.
    assert namespace["iou_per_class"](PRED, TRUTH, 2)[1] == pytest.approx(4 / 7)


@pytest.mark.parametrize(
    ("pred", "truth", "num_classes", "words"),
    [
        (np.zeros((2, 3), int), np.zeros((3, 2), int), 2, ["same shape", "(2, 3)", "(3, 2)"]),
        (np.zeros((2, 2)), np.zeros((2, 2), int), 2, ["integer", "float64", "argmax"]),
        (np.full((2, 2), 255), np.zeros((2, 2), int), 2, ["0..1", "255", "// 255"]),
        (np.full((2, 2), -1), np.zeros((2, 2), int), 2, ["0..1", "-1"]),
        (np.zeros((2, 2), int), np.zeros((2, 2), int), 0, ["positive integer", "0"]),
        (np.zeros((0, 2), int), np.zeros((0, 2), int), 2, ["empty"]),
    ],
)
def test_bad_label_maps_raise_a_data_error_that_says_what_to_do(pred, truth, num_classes, words):
    with pytest.raises(DataError) as caught:
        confusion_matrix(pred, truth, num_classes)
    for word in words:
        assert word in str(caught.value)


def test_other_bad_inputs_raise_data_errors():
    with pytest.raises(DataError, match="same shape"):
        boundary_f1(np.zeros((3, 3), bool), np.zeros((4, 4), bool))
    with pytest.raises(DataError, match="boolean mask"):
        boundary_f1(np.full((3, 3), 0.5), np.zeros((3, 3), bool))
    with pytest.raises(DataError, match="tolerance"):
        boundary_f1(np.zeros((3, 3), bool), np.zeros((3, 3), bool), tolerance=-1)
    with pytest.raises(DataError, match="class_names"):
        score_image(PRED, TRUTH, 2, class_names=["only one"])
    with pytest.raises(DataError, match="boundary_class"):
        score_image(PRED, TRUTH, 2, boundary_class=2)
    with pytest.raises(DataError, match="as many predictions"):
        score_images([PRED], [TRUTH, TRUTH], 2)
    with pytest.raises(DataError, match="at least one"):
        score_images([], [], 2)
    with pytest.raises(DataError, match="same shape"):
        pixel_error(PRED, TRUTH[:2])
