"""Beat-detection scoring as in ANSI/AAMI EC57: sensitivity, positive predictivity, F1.

A detection matches an annotated beat when they are at most `tolerance_s` apart (150 ms
in EC57), each beat and each detection at most once. `match_beats` finds a matching with
the most pairs: in 1-D, with one tolerance for every beat, the candidate detections of
the reference beats (sorted) form intervals whose both ends move right together, and
then matching each beat, left to right, to the earliest still-free detection in its
interval is optimal (an exchange argument; `tests/ecg/test_scoring.py` checks it against
scipy's Hungarian solver on random cases). It runs in O(n log n).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from dlcc.errors import DataError


@dataclass(frozen=True)
class BeatScore:
    """Counts and rates of one comparison. se = tp / (tp + fn) (sensitivity), ppv =
    tp / (tp + fp) (positive predictivity), f1 their harmonic mean. Empty cases: with no
    reference beats se is 1.0 when nothing was detected either, else 0.0; likewise ppv
    with no detections. reference, detected: the beats counted (after edge exclusion)."""

    tp: int
    fp: int
    fn: int
    se: float
    ppv: float
    f1: float
    reference: int
    detected: int

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int) -> BeatScore:
        refs, dets = tp + fn, tp + fp
        se = tp / refs if refs else (1.0 if dets == 0 else 0.0)
        ppv = tp / dets if dets else (1.0 if refs == 0 else 0.0)
        f1 = 2 * se * ppv / (se + ppv) if se + ppv else 0.0
        return cls(int(tp), int(fp), int(fn), float(se), float(ppv), float(f1), refs, dets)

    def as_dict(self) -> dict:
        return asdict(self)


def match_pairs(reference: np.ndarray, detected: np.ndarray, tolerance: float) -> np.ndarray:
    """An optimal one-to-one matching within `tolerance` (samples, inclusive).

    reference: (R,), detected: (D,) sample indices (any order). Returns (P, 2) int64
    pairs of positions (index into reference, index into detected), the most possible.
    """
    reference = _indices(reference, "reference")
    detected = _indices(detected, "detected")
    ref_order = np.argsort(reference, kind="stable")
    det_order = np.argsort(detected, kind="stable")
    refs, dets = reference[ref_order], detected[det_order]
    pairs = []
    free = 0  # detections before it are matched or too early for every later beat
    for position, beat in enumerate(refs):
        while free < len(dets) and dets[free] < beat - tolerance:
            free += 1
        if free < len(dets) and dets[free] <= beat + tolerance:
            pairs.append((ref_order[position], det_order[free]))
            free += 1
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def match_beats(
    reference: np.ndarray,
    detected: np.ndarray,
    fs: float,
    tolerance_s: float = 0.15,
    *,
    exclude_edges_s: float = 0.0,
    length: int | None = None,
) -> BeatScore:
    """Score detections against annotated beats (EC57 beat-by-beat comparison).

    reference, detected: (R,), (D,) sample indices at rate fs. tolerance_s: the largest
    distance of a match, in seconds (inclusive). exclude_edges_s: beats in the first
    exclude_edges_s seconds, and in the last when `length` (the record's samples) is
    given, are not counted: the matching is made on everything first, then a pair counts
    as a TP when its reference beat is inside, an unmatched reference beat as a FN and an
    unmatched detection as a FP only when inside. So a beat just inside matched to a
    detection just outside is not turned into one FN and one FP.
    """
    if not _positive(fs):
        raise DataError(f"match_beats expects fs > 0 Hz; got {fs!r}.")
    if not _non_negative(tolerance_s) or not _non_negative(exclude_edges_s):
        raise DataError(
            f"match_beats expects tolerance_s and exclude_edges_s >= 0 seconds; got "
            f"{tolerance_s!r} and {exclude_edges_s!r}."
        )
    reference = _indices(reference, "reference")
    detected = _indices(detected, "detected")
    pairs = match_pairs(reference, detected, tolerance_s * float(fs))
    low = exclude_edges_s * float(fs)
    high = np.inf if length is None else int(length) - exclude_edges_s * float(fs)
    ref_inside = (reference >= low) & (reference < high)
    det_inside = (detected >= low) & (detected < high)
    ref_matched = np.zeros(len(reference), dtype=bool)
    det_matched = np.zeros(len(detected), dtype=bool)
    ref_matched[pairs[:, 0]] = True
    det_matched[pairs[:, 1]] = True
    tp = int(np.count_nonzero(ref_inside[pairs[:, 0]]))
    fn = int(np.count_nonzero(ref_inside & ~ref_matched))
    fp = int(np.count_nonzero(det_inside & ~det_matched))
    return BeatScore.from_counts(tp, fp, fn)


def pooled(scores: Sequence[BeatScore]) -> BeatScore:
    """Gross statistics: tp, fp and fn summed over records, then the rates."""
    return BeatScore.from_counts(
        sum(s.tp for s in scores), sum(s.fp for s in scores), sum(s.fn for s in scores)
    )


def score_table(rows: Sequence[tuple[str, str, BeatScore]]) -> str:
    """A fixed-width table, one line per (record, detector, BeatScore) row.

    Columns: record, detector, beats (reference), TP, FP, FN, Se, PPV, F1 (rates in %),
    then one "gross" line per detector with its pooled counts when there are several
    records.
    """
    rows = _check_rows(rows)
    header = ("record", "detector", "beats", "TP", "FP", "FN", "Se%", "PPV%", "F1%")
    lines = [_format_row(header)]
    for record, detector, score in rows:
        lines.append(_format_row(_cells(record, detector, score)))
    detectors = list(dict.fromkeys(detector for _, detector, _ in rows))
    for detector in detectors:
        mine = [score for _, name, score in rows if name == detector]
        if len(mine) > 1:
            lines.append(_format_row(_cells("gross", detector, pooled(mine))))
    return "\n".join(lines)


def to_json(rows: Sequence[tuple[str, str, BeatScore]]) -> str:
    """The rows as strict JSON: {"rows": [{record, detector, tp, ...}], "gross": {...}}."""
    rows = _check_rows(rows)
    table = [{"record": r, "detector": d, **s.as_dict()} for r, d, s in rows]
    gross = {}
    for detector in dict.fromkeys(d for _, d, _ in rows):
        gross[detector] = pooled([s for _, d, s in rows if d == detector]).as_dict()
    return json.dumps({"rows": table, "gross": gross}, indent=2, allow_nan=False)


def _cells(record, detector, score: BeatScore):
    return (
        str(record), str(detector), str(score.reference), str(score.tp), str(score.fp),
        str(score.fn), f"{100 * score.se:.2f}", f"{100 * score.ppv:.2f}",
        f"{100 * score.f1:.2f}",
    )  # fmt: skip


def _format_row(cells) -> str:
    widths = (16, 16, 7, 7, 6, 6, 7, 7, 7)
    first = f"{cells[0]:<{widths[0]}} {cells[1]:<{widths[1]}}"
    rest = " ".join(f"{cell:>{width}}" for cell, width in zip(cells[2:], widths[2:], strict=True))
    return f"{first} {rest}"


def _check_rows(rows):
    rows = list(rows)
    for position, row in enumerate(rows):
        if not (isinstance(row, tuple | list) and len(row) == 3 and isinstance(row[2], BeatScore)):
            raise DataError(
                f"score_table expects (record, detector, BeatScore) rows; row {position} is "
                f"{row!r}; build them with match_beats."
            )
    return rows


def _indices(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise DataError(
            f"match_beats expects {name} as (K,) integer sample indices; got dtype "
            f"{array.dtype}, shape {array.shape}."
        )
    return array.astype(np.int64)


def _positive(value) -> bool:
    return _non_negative(value) and value > 0


def _non_negative(value) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and math.isfinite(value)
        and value >= 0
    )


__all__ = ["BeatScore", "match_beats", "match_pairs", "pooled", "score_table", "to_json"]
