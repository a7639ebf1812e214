"""Classical QRS detectors from neurokit2, as baselines for the network.

`classical_detect(signal, fs, method)` cleans the signal with neurokit2's filter for that
method (`nk.ecg_clean(method=...)`) and locates R-peaks with the matching detector
(`nk.ecg_peaks(method=...)`, without its artefact correction, so each detector is scored
as published). The peaks are then moved to the main QRS extremum of the raw signal
(`dlcc.ecg.preprocess.beats_to_native`), the convention the annotations use. The search
is ±150 ms, the EC57 match tolerance: neurokit2's hamilton2002 places its peaks up to
~120 ms before the R wave. Two detections that land on the same extremum are both kept
(they stay a true and a false positive: the snapping never hides a detector's error).
"""

from __future__ import annotations

import warnings

import numpy as np

from dlcc.ecg.preprocess import beats_to_native, usable_lead
from dlcc.errors import DataError

# neurokit2's names: Pan & Tompkins (1985), Hamilton (2002), and neurokit's own default
# (steep QRS slopes in the gradient of the cleaned signal).
CLASSICAL_METHODS: tuple[str, ...] = ("neurokit", "pantompkins1985", "hamilton2002")
# neurokit2's filters need a few seconds of signal.
MIN_SECONDS = 2.0
# Each detection is moved to the raw signal's main extremum within this distance.
REFINE_S = 0.15


def classical_detect(
    signal: np.ndarray, fs: float, method: str = "neurokit", *, refine: bool = True
) -> np.ndarray:
    """R-peaks of one ECG channel by a classical detector: (K,) int64 native indices.

    signal: (N,) float, any units; fs: Hz; method: one of CLASSICAL_METHODS. refine: move
    each peak to the raw signal's main QRS extremum within ±REFINE_S (150 ms); the
    result is sorted and may then hold a sample twice (two detections of one beat). A signal with no
    finite sample or no variation (a flat line) gives no beats and a UserWarning; NaNs
    among finite samples are filled by linear interpolation first.
    """
    if method not in CLASSICAL_METHODS:
        raise DataError(
            f"classical_detect: unknown method {method!r}; expected one of "
            f"{', '.join(CLASSICAL_METHODS)}."
        )
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1:
        raise DataError(
            f"classical_detect expects one channel (N,); got shape {signal.shape}; pass "
            f"e.g. record.signal."
        )
    if isinstance(fs, bool) or not isinstance(fs, int | float | np.integer | np.floating):
        raise DataError(f"classical_detect expects fs in Hz; got {fs!r}.")
    fs = float(fs)
    if not np.isfinite(fs) or fs < 100:
        raise DataError(f"classical_detect expects fs >= 100 Hz; got {fs:g}.")
    signal = usable_lead(signal, f"classical_detect ({method})")
    if signal is None:
        return np.zeros(0, dtype=np.int64)
    if len(signal) < MIN_SECONDS * fs:
        raise DataError(
            f"classical_detect ({method}) needs at least {MIN_SECONDS:g} s of signal; got "
            f"{len(signal) / fs:.2f} s."
        )
    import neurokit2 as nk  # slow to import (seconds): only when a detector runs

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # neurokit's own chatter on short/odd signals
            cleaned = nk.ecg_clean(signal, sampling_rate=fs, method=method)
            _, info = nk.ecg_peaks(
                cleaned, sampling_rate=fs, method=method, correct_artifacts=False
            )
    except Exception as error:
        raise DataError(
            f"classical_detect ({method}) failed on a {len(signal) / fs:.1f} s signal at "
            f"{fs:g} Hz: {' '.join(str(error).split())[:200]}"
        ) from None
    peaks = np.unique(np.asarray(info["ECG_R_Peaks"], dtype=np.int64))
    peaks = peaks[(peaks >= 0) & (peaks < len(signal))]
    if refine and len(peaks):
        peaks = np.sort(beats_to_native(peaks, fs, fs, signal, search_s=REFINE_S, merge=False))
    return peaks.astype(np.int64)


__all__ = ["CLASSICAL_METHODS", "classical_detect"]
