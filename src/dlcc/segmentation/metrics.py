"""Segmentation metrics on label maps: confusion matrix, Dice, IoU, pixel error, boundary F1.

A label map is an integer array, usually (H, W), of class indices 0..K-1. Predictions and
truths have the same shape. For the ISBI 2012 EM data class 0 is membrane (black in the
PNG) and class 1 is cell interior (white, 255): divide a PNG mask by 255, or compare it
with 127, to get these labels.

Conventions:
- Confusion matrices have rows for the true class and columns for the predicted class.
- A class absent from both prediction and truth has Dice 1.0 and IoU 1.0: nothing was
  missed and nothing was invented. (Averaging over classes or images then does not
  penalise an image for lacking a class.)
- The pixel error is the ISBI challenge's: the share of pixels whose label is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from dlcc.errors import DataError

# 4-connectivity: a pixel's neighbours are the ones above, below, left and right.
FOUR_NEIGHBOURS = ndimage.generate_binary_structure(2, 1)


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixel counts of every (true class, predicted class) pair.

    pred, truth: integer label maps of the same shape, e.g. (H, W), values in 0..K-1.
    Returns (K, K) int64: entry [t, p] counts pixels of true class t predicted as p.
    """
    pred, truth = _check_label_maps(pred, truth, num_classes)
    # One bincount over the pair index t * K + p counts all K*K pairs in one pass.
    pair_index = truth.ravel() * num_classes + pred.ravel()  # (H*W,)
    counts = np.bincount(pair_index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def dice_per_class(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Dice of each class: 2 |P ∩ T| / (|P| + |T|), from the pixel counts.

    pred, truth: integer label maps of the same shape, values in 0..K-1.
    Returns (K,) float64 in [0, 1]. A class absent from both maps scores 1.0.
    Dice equals the F1 score of the class, treated as a binary problem.
    """
    confusion = confusion_matrix(pred, truth, num_classes)  # (K, K), rows truth, cols pred
    # BEGIN SOLUTION dice_metric: Dice of each class from the pixel counts
    intersection = np.diag(confusion).astype(np.float64)  # (K,) |P ∩ T|
    predicted = confusion.sum(axis=0)  # (K,) |P|
    true = confusion.sum(axis=1)  # (K,) |T|
    denominator = (predicted + true).astype(np.float64)  # (K,)
    dice = np.ones(num_classes, dtype=np.float64)
    present = denominator > 0
    dice[present] = 2.0 * intersection[present] / denominator[present]
    return dice
    # END SOLUTION
    # BEGIN PROMPT
    # `confusion` is (K, K): [t, p] counts pixels of true class t predicted as p. Return a
    # (K,) float64 array of 2 |P ∩ T| / (|P| + |T|) per class (the diagonal, the column sums
    # and the row sums), with 1.0 for a class absent from both maps (denominator 0).
    # END PROMPT


def iou_per_class(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Intersection over union (Jaccard) of each class: |P ∩ T| / |P ∪ T|.

    pred, truth: integer label maps of the same shape, values in 0..K-1.
    Returns (K,) float64 in [0, 1]. A class absent from both maps scores 1.0.
    """
    confusion = confusion_matrix(pred, truth, num_classes)  # (K, K)
    intersection = np.diag(confusion).astype(np.float64)  # (K,)
    union = (confusion.sum(axis=0) + confusion.sum(axis=1) - np.diag(confusion)).astype(
        np.float64
    )  # (K,) |P| + |T| - |P ∩ T|
    iou = np.ones(num_classes, dtype=np.float64)
    present = union > 0
    iou[present] = intersection[present] / union[present]
    return iou


def pixel_error(pred: np.ndarray, truth: np.ndarray) -> float:
    """The ISBI challenge's pixel error: 1 - pixel accuracy, the share of wrong pixels.

    pred, truth: integer label maps of the same shape. Returns a float in [0, 1].
    """
    pred, truth = _check_label_maps(pred, truth, num_classes=None)
    return float(np.count_nonzero(pred != truth) / pred.size)


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """Pixels of a binary mask that have a 4-neighbour outside it.

    mask: (H, W) bool. Returns (H, W) bool. The image's frame is not a boundary: pixels
    outside the image count as inside the mask, so a mask that fills the image has none.
    """
    interior = ndimage.binary_erosion(mask, structure=FOUR_NEIGHBOURS, border_value=1)
    return mask & ~interior


def boundary_f1(pred_mask: np.ndarray, truth_mask: np.ndarray, tolerance: float = 2) -> float:
    """Boundary F1 of a binary mask: how well the predicted outline follows the true one.

    pred_mask, truth_mask: (H, W) bool (or 0/1 integers), True inside the object.
    tolerance: pixels (Euclidean); a boundary pixel counts as found when the other mask
    has a boundary pixel within this distance.

    Precision is the share of predicted boundary pixels within `tolerance` of a true
    boundary pixel, recall the share of true boundary pixels within `tolerance` of a
    predicted one, and the result is their harmonic mean, a float in [0, 1]. Both
    boundaries empty scores 1.0; one empty scores 0.0.

    For the ISBI membrane class (mask = label == 0) a membrane is only a few pixels
    thick, so its "boundary" is almost the whole membrane: the score then measures how
    closely the predicted membranes lie to the true ones, which is what it is for.
    """
    pred_mask = _check_mask(pred_mask, "pred_mask")
    truth_mask = _check_mask(truth_mask, "truth_mask")
    if pred_mask.shape != truth_mask.shape:
        raise DataError(
            f"boundary_f1 expects two masks of the same shape; got pred_mask "
            f"{pred_mask.shape} and truth_mask {truth_mask.shape}. Score a prediction "
            f"against the truth of the same image."
        )
    if not _is_number(tolerance) or not np.isfinite(tolerance) or tolerance < 0:
        raise DataError(
            f"boundary_f1 expects a tolerance >= 0 in pixels; got {tolerance!r}. "
            f"Use 0 for exact boundaries, or a few pixels (2 is usual)."
        )
    pred_boundary = boundary_pixels(pred_mask)  # (H, W) bool
    truth_boundary = boundary_pixels(truth_mask)  # (H, W) bool
    pred_count, truth_count = pred_boundary.sum(), truth_boundary.sum()
    if pred_count == 0 and truth_count == 0:
        return 1.0
    if pred_count == 0 or truth_count == 0:
        return 0.0
    # distance_transform_edt gives each nonzero pixel its distance to the nearest zero,
    # so passing ~boundary gives every pixel its distance to the nearest boundary pixel.
    distance_to_truth = ndimage.distance_transform_edt(~truth_boundary)  # (H, W)
    distance_to_pred = ndimage.distance_transform_edt(~pred_boundary)  # (H, W)
    precision = np.count_nonzero(distance_to_truth[pred_boundary] <= tolerance) / pred_count
    recall = np.count_nonzero(distance_to_pred[truth_boundary] <= tolerance) / truth_count
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def score_image(
    pred: np.ndarray,
    truth: np.ndarray,
    num_classes: int,
    class_names: Sequence[str] | None = None,
    boundary_class: int | None = 0,
) -> dict[str, float]:
    """Every figure for one image, in a flat dict of floats (ready for metrics.json).

    pred, truth: integer label maps of the same shape (H, W), values in 0..K-1.
    class_names: K names for the keys (default "0", "1", ...), e.g. ["membrane", "cell"].
    boundary_class: the class whose mask (label == boundary_class) gets a boundary F1
    (tolerance 2 px); None for none.

    Returns {"pixel_error", "dice_<name>" and "iou_<name>" for each class,
    "boundary_f1_<name>" for the boundary class}.
    """
    pred, truth = _check_label_maps(pred, truth, num_classes)
    names = _class_names(class_names, num_classes)
    if boundary_class is not None and (
        isinstance(boundary_class, bool)
        or not isinstance(boundary_class, (int, np.integer))
        or not 0 <= boundary_class < num_classes
    ):
        raise DataError(
            f"boundary_class must be a class index in 0..{num_classes - 1}, or None; got "
            f"{boundary_class!r}. For the ISBI membranes it is 0."
        )
    scores = {"pixel_error": pixel_error(pred, truth)}
    dice = dice_per_class(pred, truth, num_classes)  # (K,): the learner's metric if stubbed
    iou = iou_per_class(pred, truth, num_classes)  # (K,)
    for index, name in enumerate(names):
        scores[f"dice_{name}"] = float(dice[index])
        scores[f"iou_{name}"] = float(iou[index])
    if boundary_class is not None:
        scores[f"boundary_f1_{names[boundary_class]}"] = boundary_f1(
            pred == boundary_class, truth == boundary_class
        )
    return scores


def score_images(
    preds: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    num_classes: int,
    class_names: Sequence[str] | None = None,
    boundary_class: int | None = 0,
) -> dict[str, object]:
    """`score_image` for each (pred, truth) pair, and the mean over images of each figure.

    preds, truths: equally long sequences of (H, W) label maps (sizes may differ between
    images). Returns {"per_image": [dict, ...], "mean": dict}; every image counts equally
    in the mean, whatever its size.
    """
    if len(preds) != len(truths):
        raise DataError(
            f"score_images expects as many predictions as truths; got {len(preds)} "
            f"predictions and {len(truths)} truths. Pair each prediction with its image's truth."
        )
    if len(preds) == 0:
        raise DataError(
            "score_images expects at least one image; got none. Pass the lists of "
            "predicted and true label maps."
        )
    per_image = [
        score_image(pred, truth, num_classes, class_names, boundary_class)
        for pred, truth in zip(preds, truths, strict=True)
    ]
    mean = {key: float(np.mean([scores[key] for scores in per_image])) for key in per_image[0]}
    return {"per_image": per_image, "mean": mean}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return [str(index) for index in range(num_classes)]
    names = [str(name) for name in class_names]
    if len(names) != num_classes or len(set(names)) != num_classes:
        raise DataError(
            f"class_names must be {num_classes} distinct names, one per class; got "
            f"{names!r}. For the ISBI data use ['membrane', 'cell']."
        )
    return names


def _check_mask(mask: np.ndarray, what: str) -> np.ndarray:
    """A (H, W) bool copy of a bool or 0/1 integer mask, or a DataError."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DataError(
            f"{what} must be a 2-D (H, W) mask; got shape {mask.shape}. Pass one image, "
            f"e.g. labels == 0 for the membranes."
        )
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind in "iu" and np.isin(mask, (0, 1)).all():
        return mask.astype(bool)
    raise DataError(
        f"{what} must be a boolean mask (or 0/1 integers); got dtype {mask.dtype} with values "
        f"from {mask.min()} to {mask.max()}. Build it by comparison, e.g. labels == 0."
    )


def _check_label_maps(
    pred: np.ndarray, truth: np.ndarray, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Both maps as int64 arrays after checking shape, dtype and (if given) range."""
    if num_classes is not None and (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 1
    ):
        raise DataError(
            f"num_classes must be a positive integer; got {num_classes!r}. The ISBI EM "
            f"data has 2 classes (membrane, cell)."
        )
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise DataError(
            f"prediction and truth must have the same shape; got prediction {pred.shape} and "
            f"truth {truth.shape}. Take the argmax over the class axis of a (K, H, W) output, "
            f"and crop or resize the prediction to the truth's size."
        )
    if pred.size == 0:
        raise DataError(f"the label maps are empty (shape {pred.shape}); pass at least one pixel.")
    for what, labels in (("prediction", pred), ("truth", truth)):
        if labels.dtype.kind not in "biu":
            raise DataError(
                f"the {what} must hold integer class indices; got dtype {labels.dtype}. "
                f"Take the argmax of class scores, or threshold a probability "
                f"(probability > 0.5), then .astype(int)."
            )
        if num_classes is not None:
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= num_classes:
                raise DataError(
                    f"the {what} must hold class indices 0..{num_classes - 1}; got values "
                    f"from {low} to {high}. A PNG mask of 0 and 255 becomes labels with "
                    f"mask // 255 (or mask > 127)."
                )
    return pred.astype(np.int64, copy=False), truth.astype(np.int64, copy=False)
