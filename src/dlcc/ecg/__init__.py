"""ECG beat detection: records, synthetic ECG, preprocessing, scoring, classical detectors.

The signal layer is NumPy/SciPy only (wfdb for files, neurokit2 for the classical
detectors, both imported where used); `dlcc.ecg.augment` is the one module that imports
torch. Sample indices are int64, 0-based, at the rate named beside them: "native" is the
record's own rate, "internal" is `dlcc.ecg.preprocess.FS` (250 Hz).
"""
