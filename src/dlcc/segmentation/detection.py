"""Cell-centre detection: heatmaps of centres, their peaks, and matching to the truth.

Points are (row, col) in pixels, float64, as a (K, 2) array; (0, 0) is the centre of the
top-left pixel. The pieces:
- `object_centres`: the truth's centres, from a binary mask (e.g. ISBI cell interior,
  label == 1);
- `gaussian_heatmap`: the regression target of a heatmap network, one Gaussian per centre;
- `find_peaks`: the predicted centres, as local maxima of a heatmap;
- `match_points`, `detection_scores`, `detection_scores_many`: one-to-one matching within
  a tolerance, and precision, recall and F1;
- `distance_transform_peaks`: the classical baseline, peaks of the distance transform of
  the thresholded U-Net mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage, optimize, sparse, spatial
from scipy.sparse import csgraph

from dlcc.errors import DataError

# A Gaussian is computed only within this many sigmas of its centre; beyond it the value
# is below exp(-8) ~ 3e-4, and skipping it keeps a 4096 x 4096 map with thousands of
# centres fast and small.
WINDOW_SIGMAS = 4.0


def object_centres(mask: np.ndarray, min_area: int = 10) -> np.ndarray:
    """Centroids of the 4-connected components of a binary mask.

    mask: (H, W) bool (or 0/1 integers), True on objects, e.g. the cell interior.
    min_area: components with fewer pixels are ignored (specks, cut-off corners).
    Returns (K, 2) float64 (row, col), in the order of scipy.ndimage.label (raster order
    of each component's first pixel).
    """
    mask = _check_binary(mask, "mask")
    _check_integer(min_area, "min_area", minimum=0)
    components, count = ndimage.label(mask)  # 4-connected in 2-D by default
    if count == 0:
        return np.zeros((0, 2), dtype=np.float64)
    areas = np.bincount(components.ravel(), minlength=count + 1)  # (count + 1,)
    keep = np.flatnonzero(areas[1:] >= min_area) + 1  # component labels start at 1
    if len(keep) == 0:
        return np.zeros((0, 2), dtype=np.float64)
    centres = ndimage.center_of_mass(mask, components, keep)  # list of (row, col)
    return np.asarray(centres, dtype=np.float64).reshape(-1, 2)


def gaussian_heatmap(shape: tuple[int, int], centres: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """A heatmap with a Gaussian bump on each centre: max over centres of exp(-d² / 2σ²).

    shape: (H, W) of the map. centres: (K, 2) (row, col) in pixels; may be fractional, and
    may lie outside the map. sigma: the bump's width in pixels.
    Returns (H, W) float32 in [0, 1]; 1.0 exactly at a centre that falls on a pixel.
    Each bump is computed within ±4σ of its centre only (zero beyond).
    """
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(size, (int, np.integer)) and size > 0 for size in shape)
    ):
        raise DataError(
            f"gaussian_heatmap expects shape (H, W) of two positive integers; got {shape!r}. "
            f"Use the image's shape, e.g. image.shape[:2]."
        )
    centres = _check_points(centres, "centres")
    if not _is_number(sigma) or not np.isfinite(sigma) or sigma <= 0:
        raise DataError(
            f"gaussian_heatmap expects sigma > 0 in pixels; got {sigma!r}. About a third of "
            f"a cell's radius is usual (3 px for the ISBI cells)."
        )
    height, width = int(shape[0]), int(shape[1])
    heatmap = np.zeros((height, width), dtype=np.float32)
    reach = WINDOW_SIGMAS * sigma
    for row, col in centres:
        top, bottom = max(int(np.floor(row - reach)), 0), min(int(np.ceil(row + reach)) + 1, height)
        left, right = max(int(np.floor(col - reach)), 0), min(int(np.ceil(col + reach)) + 1, width)
        if top >= bottom or left >= right:
            continue  # the window lies outside the map
        # exp(-(dr² + dc²) / 2σ²) is the outer product of two 1-D Gaussians.
        rows = np.exp(-((np.arange(top, bottom) - row) ** 2) / (2 * sigma**2))  # (h,)
        cols = np.exp(-((np.arange(left, right) - col) ** 2) / (2 * sigma**2))  # (w,)
        bump = np.outer(rows, cols).astype(np.float32)  # (h, w)
        window = heatmap[top:bottom, left:right]
        np.maximum(window, bump, out=window)
    return heatmap


def find_peaks(
    heatmap: np.ndarray, min_distance: int = 4, threshold: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of a heatmap: the detected points and their heights.

    heatmap: (H, W) real. A pixel is a peak when it equals the maximum of the
    (2 * min_distance + 1)-square window around it and is at least `threshold`.
    A flat top (several touching pixels of the same maximal value) gives one point, at the
    plateau's centroid. Two peaks closer than that (Chebyshev distance <= min_distance,
    as the square window measures it) keep only the higher one.

    Returns (points (K, 2) float64 (row, col), scores (K,) float64 heights), sorted by
    score, highest first (ties in raster order).
    """
    heatmap = _check_map(heatmap, "heatmap")
    _check_integer(min_distance, "min_distance", minimum=1)
    if not _is_number(threshold) or not np.isfinite(threshold):
        raise DataError(
            f"find_peaks expects a finite threshold; got {threshold!r}. Use the lowest "
            f"height a real peak reaches (0.3 for a heatmap in [0, 1])."
        )
    window = 2 * min_distance + 1
    local_max = ndimage.maximum_filter(heatmap, size=window, mode="constant", cval=-np.inf)
    is_peak = (heatmap == local_max) & (heatmap >= threshold)  # (H, W) bool
    # Touching peak pixels form a plateau; 8-connectivity so a diagonal plateau is one.
    plateaus, count = ndimage.label(is_peak, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros((0, 2), dtype=np.float64), np.zeros(0, dtype=np.float64)
    # Reduce over the peak pixels only (a handful), not the whole map.
    peak_rows, peak_cols = np.nonzero(is_peak)  # (N,) each
    plateau = plateaus[peak_rows, peak_cols] - 1  # (N,) plateau index, 0..count-1
    sizes = np.bincount(plateau, minlength=count).astype(np.float64)  # (count,)
    points = np.stack(
        [
            np.bincount(plateau, weights=peak_rows, minlength=count) / sizes,
            np.bincount(plateau, weights=peak_cols, minlength=count) / sizes,
        ],
        axis=1,
    )  # (count, 2) plateau centroids
    scores = np.zeros(count, dtype=np.float64)
    # Touching peak pixels lie in each other's windows, so they are equal: a plateau is flat.
    scores[plateau] = heatmap[peak_rows, peak_cols]
    order = np.lexsort((points[:, 1], points[:, 0], -scores))  # score desc, then raster
    points, scores = points[order], scores[order]
    keep = _spaced(points, min_distance)
    return points[keep], scores[keep]


def match_points(
    predicted: np.ndarray, truth: np.ndarray, tolerance: float = 5.0
) -> tuple[int, int, int]:
    """One-to-one matching of predicted to true points, within a distance tolerance.

    predicted: (P, 2), truth: (T, 2), (row, col) in pixels; either may be empty.
    tolerance: the largest Euclidean distance (pixels, inclusive) at which a pair counts.
    The matching is optimal (Hungarian, scipy.optimize.linear_sum_assignment): it has the
    most pairs within the tolerance, and among those the smallest total distance. A
    greedy nearest-first matching can find fewer.

    Returns (tp, fp, fn): matched pairs, unmatched predictions, unmatched true points.
    """
    predicted = _check_points(predicted, "predicted")
    truth = _check_points(truth, "truth")
    if not _is_number(tolerance) or not np.isfinite(tolerance) or tolerance < 0:
        raise DataError(
            f"match_points expects a tolerance >= 0 in pixels; got {tolerance!r}. About a "
            f"cell's radius is usual (5 px for the ISBI cells)."
        )
    tp = _count_matches(predicted, truth, float(tolerance))
    return tp, len(predicted) - tp, len(truth) - tp


def detection_scores(
    predicted: np.ndarray, truth: np.ndarray, tolerance: float = 5.0
) -> dict[str, float]:
    """Precision, recall and F1 of one image's detections (see `match_points`).

    predicted: (P, 2), truth: (T, 2) (row, col). Returns {"precision", "recall", "f1",
    "tp", "fp", "fn"}. Conventions for empty inputs: precision with no predictions is
    1.0 if there is no truth either, else 0.0; recall with no truth is 1.0 if there are
    no predictions either, else 0.0. So nothing against nothing scores 1.0 everywhere,
    and an empty side against a non-empty one scores 0.0.
    """
    tp, fp, fn = match_points(predicted, truth, tolerance)
    return _scores_from_counts(tp, fp, fn)


def detection_scores_many(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], tolerance: float = 5.0
) -> dict[str, object]:
    """Pooled detection scores over images: tp, fp and fn summed, then P, R and F1.

    pairs: a sequence of (predicted (P_i, 2), truth (T_i, 2)) per image. Pooling weighs
    every cell equally (an image with many cells counts more than one with few).
    Returns {"precision", "recall", "f1", "tp", "fp", "fn", "per_image": [dict, ...]}.
    """
    per_image = []
    for position, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DataError(
                f"detection_scores_many expects (predicted, truth) pairs; item {position} "
                f"is {type(pair).__name__}. Pass e.g. list(zip(predicted_points, true_points))."
            )
        per_image.append(detection_scores(pair[0], pair[1], tolerance))
    totals = [sum(int(scores[key]) for scores in per_image) for key in ("tp", "fp", "fn")]
    pooled: dict[str, object] = dict(_scores_from_counts(*totals))
    pooled["per_image"] = per_image
    return pooled


def distance_transform_peaks(
    foreground_probability: np.ndarray,
    threshold: float = 0.5,
    min_distance: int = 4,
    smooth_sigma: float = 1.0,
    peak_threshold: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The classical baseline: peaks of the distance transform of the thresholded mask.

    foreground_probability: (H, W) in [0, 1], e.g. the U-Net's cell-interior probability.
    threshold: pixels with probability above it are foreground (0.5 agrees with argmax).
    The Euclidean distance of each foreground pixel to the background peaks near each
    cell's centre; a Gaussian blur of `smooth_sigma` pixels (0 for none) removes the
    ridges' small bumps, then `find_peaks(min_distance)` keeps maxima of at least
    `peak_threshold` pixels (cells thinner than that are ignored).

    Returns (points (K, 2) float64 (row, col), scores (K,) float64: the smoothed distance
    at each peak, about the cell's inscribed radius in pixels), highest first.
    """
    probability = _check_map(foreground_probability, "foreground_probability")
    if probability.min() < 0 or probability.max() > 1:
        raise DataError(
            f"foreground_probability must lie in [0, 1]; got values from {probability.min():g} "
            f"to {probability.max():g}. Apply softmax (or sigmoid) to the logits first."
        )
    for name, value in (("threshold", threshold), ("smooth_sigma", smooth_sigma)):
        if not _is_number(value) or not np.isfinite(value) or value < 0:
            raise DataError(
                f"distance_transform_peaks expects {name} >= 0; got {value!r}. The "
                f"defaults are threshold 0.5 and smooth_sigma 1.0."
            )
    foreground = probability > threshold  # (H, W) bool
    distance = ndimage.distance_transform_edt(foreground)  # (H, W) pixels to background
    if smooth_sigma > 0:
        distance = ndimage.gaussian_filter(distance, sigma=smooth_sigma)
    return find_peaks(distance, min_distance=min_distance, threshold=peak_threshold)


def _scores_from_counts(tp: int, fp: int, fn: int) -> dict[str, float]:
    predictions, truths = tp + fp, tp + fn
    precision = tp / predictions if predictions else (1.0 if truths == 0 else 0.0)
    recall = tp / truths if truths else (1.0 if predictions == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
    }


def _count_matches(predicted: np.ndarray, truth: np.ndarray, tolerance: float) -> int:
    """The number of pairs (within tolerance) of an optimal one-to-one matching."""
    if len(predicted) == 0 or len(truth) == 0:
        return 0
    # Only pairs within the tolerance can match, so the problem splits into the connected
    # groups of the "within tolerance" graph; each group is solved on its own, which keeps
    # thousands of cells fast (a dense P x T assignment would not be).
    near = spatial.cKDTree(predicted).sparse_distance_matrix(
        spatial.cKDTree(truth), tolerance, output_type="ndarray"
    )
    if len(near) == 0:
        return 0
    pred_index, truth_index, distance = near["i"], near["j"], near["v"]
    graph = sparse.coo_matrix(
        (np.ones(len(near)), (pred_index, len(predicted) + truth_index)),
        shape=(len(predicted) + len(truth),) * 2,
    )
    _, group = csgraph.connected_components(graph, directed=False)
    pair_group = group[pred_index]  # (N,) the group of each near pair
    order = np.argsort(pair_group, kind="stable")
    boundaries = np.flatnonzero(np.diff(pair_group[order])) + 1
    matches = 0
    for members in np.split(order, boundaries):
        rows, row_index = np.unique(pred_index[members], return_inverse=True)
        cols, col_index = np.unique(truth_index[members], return_inverse=True)
        # A pair over the tolerance gets a cost larger than any sum of real distances, so
        # the assignment first maximises the number of real pairs, then minimises distance.
        impossible = (min(len(rows), len(cols)) + 1) * (tolerance + 1)
        cost = np.full((len(rows), len(cols)), impossible)
        cost[row_index, col_index] = distance[members]
        chosen_rows, chosen_cols = optimize.linear_sum_assignment(cost)
        matches += int(np.count_nonzero(cost[chosen_rows, chosen_cols] <= tolerance))
    return matches


def _spaced(points: np.ndarray, min_distance: int) -> np.ndarray:
    """Indices of `points` (sorted best first) with no better point within min_distance."""
    keep = np.ones(len(points), dtype=bool)
    if len(points) < 2:
        return np.flatnonzero(keep)
    close = spatial.cKDTree(points).query_pairs(min_distance, p=np.inf, output_type="ndarray")
    if len(close) == 0:
        return np.flatnonzero(keep)
    neighbours: dict[int, list[int]] = {}
    for first, second in close:
        neighbours.setdefault(int(min(first, second)), []).append(int(max(first, second)))
    for index in sorted(neighbours):  # best first: a kept point suppresses worse neighbours
        if keep[index]:
            keep[neighbours[index]] = False
    return np.flatnonzero(keep)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_integer(value: object, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"{name} must be an integer >= {minimum}; got {value!r}.")


def _check_binary(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DataError(
            f"{name} must be a 2-D (H, W) mask; got shape {mask.shape}. Pass one image, "
            f"e.g. labels == 1 for the cell interior."
        )
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind in "iu" and np.isin(mask, (0, 1)).all():
        return mask.astype(bool)
    raise DataError(
        f"{name} must be a boolean mask (or 0/1 integers); got dtype {mask.dtype}. Build it "
        f"by comparison, e.g. labels == 1 (or png > 127)."
    )


def _check_map(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 2 or values.size == 0:
        raise DataError(
            f"{name} must be a non-empty 2-D (H, W) array; got shape {values.shape}. For a "
            f"network's (1, H, W) output, take output[0]."
        )
    if values.dtype.kind not in "biuf":
        raise DataError(f"{name} must hold real numbers; got dtype {values.dtype}.")
    values = values.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        raise DataError(
            f"{name} holds NaN or infinite values; check the model's output (a diverged "
            f"network gives NaN) before finding peaks."
        )
    return values


def _check_points(points: np.ndarray, name: str) -> np.ndarray:
    try:
        points = np.asarray(points)
    except ValueError as error:  # ragged lists
        raise DataError(
            f"{name} must be a (K, 2) array of (row, col) points; got rows of different "
            f"lengths ({error}). Give every point exactly two coordinates."
        ) from None
    if points.ndim > 0 and points.size == 0:
        return np.zeros((0, 2), dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.dtype.kind not in "iuf":
        raise DataError(
            f"{name} must be a (K, 2) array of (row, col) points; got shape {points.shape} "
            f"and dtype {points.dtype}. Stack the points with np.asarray(points).reshape(-1, 2)."
        )
    points = points.astype(np.float64)
    if not np.isfinite(points).all():
        raise DataError(f"{name} holds NaN or infinite coordinates; drop those points first.")
    return points
