"""ECG beat detection: records, synthetic ECG, preprocessing, scoring, classical detectors.

The signal layer (records, synth, preprocess, scoring, classical, dataset) is NumPy/SciPy
only (wfdb for files, neurokit2 for the classical detectors, both imported where used);
the network side imports torch: `augment` (training windows), `detector` (a trained
model: `detect_r_peaks`, also importable from here), `realtime` (the stream) and
`commands` (`dlcc ecg`). Sample indices are int64, 0-based, at the rate named beside
them: "native" is the record's own rate, "internal" is `dlcc.ecg.preprocess.FS` (250 Hz).
"""

__all__ = ["detect_r_peaks"]


def __getattr__(name: str):
    """`dlcc.ecg.detect_r_peaks` without importing torch for the signal modules."""
    if name == "detect_r_peaks":
        from dlcc.ecg.detector import detect_r_peaks

        return detect_r_peaks
    raise AttributeError(f"module 'dlcc.ecg' has no attribute {name!r}")
