"""Preprocessing for the beat detector: one internal rate, windows, heatmaps, peaks.

The network sees every record at the internal rate `FS` = 250 Hz, whatever the record's
own ("native") rate: 250 Hz keeps a QRS (80-120 ms) at 20-30 samples, is a common
clinical rate, and is a simple ratio to 360 Hz (25/36), 128 Hz (125/64) and 500 Hz (1/2).

- `resample`, `to_internal`: polyphase resampling to FS (scipy's `resample_poly` filter,
  computed here in NumPy: importing scipy.signal costs a second of every `dlcc ecg detect`);
- `beats_to_internal`, `beats_to_native`: sample indices between the two rates, with an
  optional refinement onto the native signal's QRS extremum;
- `normalise`, `windows`, `stitch`: fixed-length windows, robustly scaled, and their
  recombination after the network;
- `heatmap`: the training target (a Gaussian per beat); `local_maxima`, `pick_peaks`:
  beats from scores.
"""

from __future__ import annotations

import bisect
import warnings
from fractions import Fraction

import numpy as np

from dlcc.errors import DataError

FS = 250.0  # Hz: the internal rate of windows, targets and network outputs
MAX_DENOMINATOR = 1000  # the resampling ratio up/down is the closest with down <= this
PAD_MODES = ("edge", "constant")
STITCH_MODES = ("mean", "centre")


def resampling_ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    """(up, down): the fraction closest to fs_out / fs_in with down <= 1000.

    Exact for rational rates such as 360 -> 250 (25, 36). Every function here converts
    with this same fraction, so signals and indices stay consistent even when the true
    ratio is irrational.
    """
    _check_rate(fs_in, "fs_in")
    _check_rate(fs_out, "fs_out")
    ratio = Fraction(float(fs_out) / float(fs_in)).limit_denominator(MAX_DENOMINATOR)
    if ratio.numerator == 0:
        raise DataError(f"cannot resample from {fs_in:g} Hz to {fs_out:g} Hz: ratio too small.")
    return ratio.numerator, ratio.denominator


def resample(signal: np.ndarray, fs_in: float, fs_out: float = FS) -> np.ndarray:
    """A 1-D signal at fs_in resampled to fs_out (scipy.signal.resample_poly's result).

    signal: (N,) real. Returns (M,) float64 with M = ceil(N * up / down), (up, down) =
    `resampling_ratio(fs_in, fs_out)`. Sample m of the output is at time m / fs_out (the
    polyphase filter is zero-phase: no delay). Equal rates return a copy.

    The signal is up-sampled by `up` (zeros between samples), low-pass filtered by the
    filter of `lowpass_filter`, centred, and every `down`-th sample kept: output m is
    sum_n x[n] h[m * down + half - n * up] over the taps in range, with samples outside
    the signal taken as zero. Only the taps that meet a non-zero sample are computed.
    """
    signal = _check_signal(signal, "resample")
    up, down = resampling_ratio(fs_in, fs_out)
    if up == down:
        return signal.copy()
    taps = lowpass_filter(up, down)  # (2 * half + 1,)
    half = (len(taps) - 1) // 2
    n_out = -(-len(signal) * up // down)
    per_phase = -(-len(taps) // up)  # taps of one polyphase branch
    table = np.zeros(per_phase * up + up)
    table[: len(taps)] = taps
    branches = table[np.arange(up)[:, None] + up * np.arange(per_phase)[None, :]]  # (up, T)
    padded = np.concatenate([np.zeros(per_phase), signal, np.zeros(per_phase + 1)])
    out = np.empty(n_out)
    chunk = max(1, 2**20 // per_phase)
    lags = np.arange(per_phase)
    for first in range(0, n_out, chunk):
        centre = np.arange(first, min(first + chunk, n_out)) * down + half  # in the up-sampled grid
        newest = centre // up  # the latest input sample each output reaches
        phase = centre - newest * up  # which branch: tap phase + t * up meets sample newest - t
        gathered = padded[newest[:, None] - lags[None, :] + per_phase]  # (chunk, T)
        out[first : first + len(centre)] = np.einsum("ct,ct->c", gathered, branches[phase])
    return out


def lowpass_filter(up: int, down: int) -> np.ndarray:
    """The anti-aliasing filter of resampling by up/down, scaled by up: (2 * half + 1,).

    A Kaiser-windowed (beta 5) sinc with its cut-off at the lower of the two Nyquist
    rates, half = 10 * max(up, down) taps each side, unit gain at DC before the scaling by
    up (which restores the amplitude the zeros of up-sampling take away). This is
    scipy.signal.resample_poly's default filter (firwin with a ('kaiser', 5.0) window).
    """
    rate = max(up, down)
    half = 10 * rate
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    taps = np.sinc(offsets / rate) / rate * np.kaiser(2 * half + 1, 5.0)
    return taps / taps.sum() * up


def to_internal(signal: np.ndarray, fs: float) -> np.ndarray:
    """The signal (N,) at fs resampled to the internal rate FS: (M,) float64."""
    return resample(signal, fs, FS)


def beats_to_internal(beats: np.ndarray, fs_in: float, fs_out: float = FS) -> np.ndarray:
    """Sample indices at fs_in mapped to fs_out: round(beats * up / down), (K,) int64.

    Uses the same ratio as `resample`, so index m of the result points at the same
    time in the resampled signal.
    """
    beats = _check_indices(beats, "beats_to_internal")
    up, down = resampling_ratio(fs_in, fs_out)
    return np.round(beats * (up / down)).astype(np.int64)


def beats_to_native(
    indices: np.ndarray,
    fs_internal: float,
    fs_native: float,
    signal: np.ndarray | None = None,
    search_s: float = 0.05,
    merge: bool = True,
) -> np.ndarray:
    """Internal-rate peak indices mapped back to native sample indices, (K,) int64.

    indices: (K,) at fs_internal. Without `signal`, each becomes round(i * down / up)
    (the inverse of `beats_to_internal`: a native index survives the round trip within
    one sample). With the native signal (N,), each is then moved to the main QRS
    extremum: the sample of largest |x - local median| within ±search_s, where the
    local median (the baseline) is taken over ±3 search_s. Indices are clipped to the
    signal; with merge, duplicates created by the refinement are merged (the first
    kept; the result stays sorted when the input is); without, there is one output per
    input.
    """
    indices = _check_indices(indices, "beats_to_native")
    up, down = resampling_ratio(fs_native, fs_internal)
    native = np.round(indices * (down / up)).astype(np.int64)
    if signal is None:
        return native
    signal = _check_signal(signal, "beats_to_native")
    if len(native) == 0:
        return native
    reach = max(round(search_s * float(fs_native)), 0)
    baseline_reach = 3 * reach
    padded = np.pad(signal, baseline_reach, mode="edge")  # (N + 2b,)
    native = np.clip(native, 0, len(signal) - 1)
    offsets = np.arange(-baseline_reach, baseline_reach + 1)  # (2b + 1,)
    around = padded[native[:, None] + baseline_reach + offsets]  # (K, 2b + 1)
    baseline = np.median(around, axis=1, keepdims=True)  # (K, 1)
    inner = around[:, baseline_reach - reach : baseline_reach + reach + 1]  # (K, 2r + 1)
    refined = native + np.argmax(np.abs(inner - baseline), axis=1) - reach
    refined = np.clip(refined, 0, len(signal) - 1)
    if not merge:
        return refined.astype(np.int64)
    _, first = np.unique(refined, return_index=True)
    return refined[np.sort(first)].astype(np.int64)


def normalise(window: np.ndarray) -> np.ndarray:
    """Robust per-window scaling: (x - median) / scale along the last axis.

    window: (L,) or (n, L). scale = max(IQR / 1.349, (q99 - q1) / 10, max|x - median| / 50):
    the IQR alone is the sd of Gaussian noise, but a clean ECG sits near its baseline
    most of the time and its IQR can be tiny, which would blow the QRS up; the 1-99 %
    spread bounds a QRS (about 10 % of the samples) to about ±10, and the last term
    bounds every output to ±50. A flat window (scale 0, or no finite sample) gives
    zeros, not NaN; non-finite samples are set to the median (zero after scaling).
    Returns float64.
    """
    window = np.asarray(window, dtype=np.float64)
    if window.ndim not in (1, 2) or window.shape[-1] == 0:
        raise DataError(
            f"normalise expects a window (L,) or windows (n, L) with L >= 1; got shape "
            f"{window.shape}."
        )
    finite = np.isfinite(window)
    safe = np.where(finite, window, np.nan)
    with warnings.catch_warnings():  # an all-NaN window: its percentiles are NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        q1, q25, median, q75, q99 = np.nanpercentile(
            safe, [1, 25, 50, 75, 99], axis=-1, keepdims=True
        )
    median = np.nan_to_num(median)
    centred = np.where(finite, window - median, 0.0)
    largest = np.abs(centred).max(axis=-1, keepdims=True)
    scale = np.maximum(np.maximum((q75 - q25) / 1.349, (q99 - q1) / 10), largest / 50)
    scale = np.nan_to_num(scale)
    flat = scale <= 1e-12 * np.maximum(1.0, np.abs(median))
    return np.where(flat, 0.0, centred / np.where(flat, 1.0, scale))


def window_starts(total_length: int, length: int, hop: int) -> np.ndarray:
    """Start samples of the windows `windows` cuts: 0, hop, 2 hop, ..., up to the first
    start whose window reaches the end (one window when total_length <= length)."""
    for value, name in ((total_length, "total_length"), (length, "length"), (hop, "hop")):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise DataError(f"windows expects {name} as an integer >= 1; got {value!r}.")
    if hop > length:
        raise DataError(
            f"windows expects hop <= length (windows that touch or overlap); got hop {hop} "
            f"for length {length}; lower the hop."
        )
    count = 1 if total_length <= length else -(-(total_length - length) // hop) + 1
    return np.arange(count, dtype=np.int64) * hop


def windows(signal: np.ndarray, length: int, hop: int, pad: str = "edge") -> np.ndarray:
    """Cut (N,) into overlapping windows (n, length), starts from `window_starts`.

    The last window may run past the end: those samples repeat the last value
    (pad="edge", for signals) or are zero (pad="constant", for heatmap targets).
    """
    signal = _check_signal(signal, "windows", allow_nan=True)
    if pad not in PAD_MODES:
        raise DataError(f"windows expects pad in {PAD_MODES}; got {pad!r}.")
    starts = window_starts(len(signal), length, hop)
    needed = int(starts[-1]) + length - len(signal)
    padded = np.pad(signal, (0, max(needed, 0)), mode=pad)  # (>= starts[-1] + length,)
    return padded[starts[:, None] + np.arange(length)]  # (n, length)


def stitch(scores: np.ndarray, hop: int, total_length: int, mode: str = "mean") -> np.ndarray:
    """Recombine window outputs (n, length) cut by `windows` into one (total_length,).

    mode="mean": each sample is the mean of the windows that cover it. mode="centre":
    each sample comes from the window in which it lies farthest from an edge (ties to
    the earlier window), which drops the windows' edge effects. Samples past the windows
    (none when n matches `window_starts`) are zero. Returns float64.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise DataError(f"stitch expects scores (n, length); got shape {scores.shape}.")
    if mode not in STITCH_MODES:
        raise DataError(f"stitch expects mode in {STITCH_MODES}; got {mode!r}.")
    count, length = scores.shape
    if isinstance(hop, bool) or not isinstance(hop, int | np.integer) or hop < 1:
        raise DataError(f"stitch expects hop as an integer >= 1; got {hop!r}.")
    starts = np.arange(count, dtype=np.int64) * hop  # as `windows` cut them
    span = int(starts[-1]) + length if count else 0
    out = np.zeros(max(span, int(total_length)))
    if mode == "mean":
        counts = np.zeros_like(out)
        for start, row in zip(starts, scores, strict=True):
            out[start : start + length] += row
            counts[start : start + length] += 1
        out = np.divide(out, counts, out=np.zeros_like(out), where=counts > 0)
    else:
        best = np.full(len(out), -1.0)  # the distance to the nearest edge so far
        edge_distance = np.minimum(np.arange(length), np.arange(length)[::-1])  # (length,)
        for start, row in zip(starts, scores, strict=True):
            view = slice(start, start + length)
            better = edge_distance > best[view]
            out[view] = np.where(better, row, out[view])
            best[view] = np.where(better, edge_distance, best[view])
    return out[: int(total_length)]


def heatmap(beats: np.ndarray, length: int, fs: float = FS, sigma_s: float = 0.02) -> np.ndarray:
    """The training target: max over beats of exp(-(n - b)² / 2σ²), σ = sigma_s * fs.

    beats: (K,) integer sample indices (may lie outside [0, length): their tails still
    show). Returns (length,) float32 in [0, 1], exactly 1.0 at each beat inside. Each
    Gaussian is computed within ±4σ.
    """
    beats = _check_indices(beats, "heatmap")
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 0:
        raise DataError(f"heatmap expects length as an integer >= 0; got {length!r}.")
    _check_rate(fs, "fs")
    if not _positive(sigma_s):
        raise DataError(f"heatmap expects sigma_s > 0 seconds; got {sigma_s!r}.")
    sigma = sigma_s * float(fs)
    reach = int(np.ceil(4 * sigma))
    out = np.zeros(int(length), dtype=np.float32)
    offsets = np.arange(-reach, reach + 1)  # (2r + 1,)
    bump = np.exp(-0.5 * (offsets / sigma) ** 2).astype(np.float32)  # (2r + 1,)
    for beat in beats:
        start, stop = max(beat - reach, 0), min(beat + reach + 1, int(length))
        if start >= stop:
            continue
        segment = bump[start - (beat - reach) : stop - (beat - reach)]
        np.maximum(out[start:stop], segment, out=out[start:stop])
    return out


def local_maxima(scores: np.ndarray) -> np.ndarray:
    """The peaks of a trace, as scipy.signal.find_peaks finds them: (K,) int64, sorted.

    scores: (N,) real, no NaN. A peak is a run of equal samples (one sample, or a plateau)
    higher than the samples on both sides of it; a run that touches the first or last
    sample has one side only and is never a peak. A plateau's position is its middle (the
    left one of two middles).
    """
    scores = np.asarray(scores)
    if len(scores) < 3:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate([[True], scores[1:] != scores[:-1]]))
    ends = np.concatenate([starts[1:], [len(scores)]]) - 1
    values = scores[starts]  # one value per run of equal samples
    inner = np.arange(1, len(starts) - 1)
    peak = (values[inner] > values[inner - 1]) & (values[inner] > values[inner + 1])
    runs = inner[peak]
    return ((starts[runs] + ends[runs]) // 2).astype(np.int64)


def pick_peaks(
    scores: np.ndarray, fs: float = FS, threshold: float = 0.5, refractory_s: float = 0.25
) -> np.ndarray:
    """Beats from a score trace: local maxima >= threshold, greedy by height, spaced.

    scores: (N,) real. A peak is a run of equal samples (one sample, or a plateau) higher
    than both its neighbours; the first and last samples have one neighbour and are never
    peaks. A plateau's position is its middle (the left one of two). The peaks are then
    taken highest first (ties: the earlier first), each dropped when a kept one lies
    closer than refractory_s (ceil(refractory_s * fs) samples are allowed). Returns (K,)
    int64 indices, sorted.
    """
    scores = _check_signal(scores, "pick_peaks", allow_nan=True)
    _check_rate(fs, "fs")
    if not isinstance(threshold, int | float | np.integer | np.floating) or not np.isfinite(
        threshold
    ):
        raise DataError(f"pick_peaks expects a finite threshold; got {threshold!r}.")
    if not isinstance(refractory_s, int | float) or not refractory_s >= 0:
        raise DataError(f"pick_peaks expects refractory_s >= 0 seconds; got {refractory_s!r}.")
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    # BEGIN SOLUTION pick_peaks: local maxima >= threshold, then greedy by height, spaced
    candidates = local_maxima(scores)  # plateau middles, left of two; no edges
    candidates = candidates[scores[candidates] >= threshold]
    gap = int(np.ceil(refractory_s * float(fs) - 1e-9))
    order = np.lexsort((candidates, -scores[candidates]))  # height desc, then position
    kept: list[int] = []  # sorted positions of the kept peaks
    for position in candidates[order]:
        slot = bisect.bisect_left(kept, position)
        if slot > 0 and position - kept[slot - 1] < gap:
            continue
        if slot < len(kept) and kept[slot] - position < gap:
            continue
        kept.insert(slot, int(position))
    return np.asarray(kept, dtype=np.int64)
    # END SOLUTION
    # BEGIN PROMPT
    # scores is (N,) float64 here, with NaN and inf already turned into -inf.
    # 1. The candidates: every peak (a sample, or the middle of a plateau of equal samples,
    #    the left one of two middles, higher than the samples on both sides; never the first
    #    or last sample) whose score is >= threshold. local_maxima(scores), above, finds exactly
    #    these peaks (so do scipy.signal.find_peaks and a loop over the samples).
    # 2. gap = ceil(refractory_s * fs) samples (compute it as int(np.ceil(refractory_s *
    #    float(fs) - 1e-9)): 0.275 * 360.0 is 99.00000000000001, and the gap is 99).
    # 3. Visit the candidates highest first (equal heights: the earlier first) and keep one
    #    unless a peak already kept lies fewer than gap samples away.
    # Return the kept positions sorted, as a (K,) int64 array (np.int64, even when empty).
    # END PROMPT


def fill_missing(signal: np.ndarray, who: str) -> np.ndarray:
    """Linear interpolation over NaN/inf samples (with a warning naming `who`), when some
    samples are finite; the signal as it is otherwise."""
    finite = np.isfinite(signal)
    if finite.all() or not finite.any():
        return signal
    warnings.warn(
        f"{who}: {int((~finite).sum())} missing sample(s) of {len(signal)} were filled by "
        "linear interpolation",
        UserWarning,
        stacklevel=3,
    )
    positions = np.arange(len(signal))
    filled = np.array(signal, dtype=np.float64)
    filled[~finite] = np.interp(positions[~finite], positions[finite], signal[finite])
    return filled


def usable_lead(signal: np.ndarray, who: str) -> np.ndarray | None:
    """A lead ready for a detector: gaps filled (`fill_missing`), or None, with a warning,
    when it is flat or has no finite sample (it holds no beats: not an error)."""
    signal = np.asarray(signal, dtype=np.float64)
    finite = np.isfinite(signal)
    if not finite.any() or np.ptp(signal[finite]) == 0:
        warnings.warn(
            f"{who}: the signal is flat or has no finite sample; no beats detected",
            UserWarning,
            stacklevel=3,
        )
        return None
    return fill_missing(signal, who)


def _check_rate(value, name: str) -> None:
    if not _positive(value):
        raise DataError(f"expected {name} as a sampling rate > 0 Hz; got {value!r}.")


def _positive(value) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and bool(np.isfinite(value))
        and value > 0
    )


def _check_signal(signal, who: str, allow_nan: bool = True) -> np.ndarray:
    array = np.asarray(signal)
    if array.ndim != 1 or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise DataError(
            f"{who} expects a 1-D real signal (N,); got dtype {array.dtype}, shape "
            f"{array.shape}; pass one channel, e.g. record.signal."
        )
    return array.astype(np.float64, copy=False)


def _check_indices(indices, who: str) -> np.ndarray:
    array = np.asarray(indices)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise DataError(
            f"{who} expects (K,) integer sample indices; got dtype {array.dtype}, shape "
            f"{array.shape}; round and cast with .astype(np.int64)."
        )
    return array.astype(np.int64)


__all__ = [
    "FS",
    "beats_to_internal",
    "beats_to_native",
    "heatmap",
    "normalise",
    "pick_peaks",
    "resample",
    "resampling_ratio",
    "stitch",
    "to_internal",
    "window_starts",
    "windows",
]
