"""R-peaks of an ECG with a trained network: the detector behind `dlcc ecg detect`.

    from dlcc.ecg import detect_r_peaks
    beats = detect_r_peaks(signal, fs=360.0)            # (K,) int64 native sample indices

A `BeatDetector` is a `dlcc.models.ecg.BeatNet` with the settings it was trained and
tuned with: the threshold and refractory period of its peak picker, and its window. It
comes from one of three places (`load_detector`):

- nothing: the detector the package ships (``default_model/beatnet.pt``, with its model
  card ``default_model/MODEL_CARD.md``), trained by the project's own recipe;
- a run directory of `dlcc train` with ``task: beats`` (its best checkpoint);
- a file written by `export_detector`: plain tensors and numbers, read with
  ``torch.load(weights_only=True)``, so loading it runs no code from the file.

Detection, for a signal (N,) at its native rate fs:
1. resample to the internal rate `FS` (`dlcc.ecg.preprocess.to_internal`);
2. cut windows of the training length, overlapping by a quarter (`HOP_FRACTION`), each
   normalised on its own;
3. run the network on batches of windows; stitch the beat probabilities back together,
   each sample from the window where it is farthest from an edge;
4. pick peaks (threshold, refractory period) and map them back to native samples, each
   moved onto its QRS extremum in the native signal (`beats_to_native`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dlcc.ecg.preprocess import (
    FS,
    beats_to_native,
    normalise,
    pick_peaks,
    stitch,
    to_internal,
    usable_lead,
    windows,
)
from dlcc.errors import DataError, DlccError

FORMAT = "dlcc-beat-detector/1"
DEFAULT_MODEL = Path(__file__).with_name("default_model") / "beatnet.pt"
# Windows start every 3/4 of a window: every sample is read >= 1/8 of a window (1 s of
# 8 s) from an edge, at 4/3 the cost of one pass (half-overlapping windows cost 2x and
# scored the same: pooled F1 0.9985 on the 17 held-out records at either hop).
HOP_FRACTION = 0.75
MIN_FS = 100.0  # Hz: below it a QRS complex (80-120 ms) is a handful of samples


class DetectorError(DlccError):
    """A detector cannot be loaded or used; the message says why and what to do."""


@dataclass
class BeatDetector:
    """A trained beat network and the settings it detects with.

    model: a BeatNet in eval mode, (N, 1, window) -> (N, 1, window) logits.
    threshold, refractory_s: the peak picker's (`pick_peaks`).
    window, hop: samples at FS of the windows it reads, and of their spacing.
    source: where it was loaded from. card: what its file says about it (metrics, data).
    """

    model: torch.nn.Module
    threshold: float = 0.5
    refractory_s: float = 0.2
    window: int = 2000
    hop: int = 1500
    source: str = ""
    card: dict = field(default_factory=dict)
    batch_size: int = 64

    def probabilities(self, internal: np.ndarray) -> np.ndarray:
        """(T,) signal at FS -> (T,) float64 beat probabilities, window by window."""
        cut = normalise(windows(internal, self.window, self.hop))  # (n, window)
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(cut), self.batch_size):
                batch = torch.from_numpy(cut[start : start + self.batch_size]).float()
                outputs.append(torch.sigmoid(self.model(batch[:, None]))[:, 0].numpy())
        return stitch(np.concatenate(outputs), self.hop, len(internal), mode="centre")

    def detect(self, signal: np.ndarray, fs: float, *, refine: bool = True) -> np.ndarray:
        """(N,) ECG at fs Hz -> (K,) int64 sorted native sample indices of its R-peaks."""
        signal = check_ecg(signal, fs, self.window)
        if signal is None:
            return np.zeros(0, dtype=np.int64)
        internal = to_internal(signal, fs)
        peaks = pick_peaks(self.probabilities(internal), FS, self.threshold, self.refractory_s)
        return beats_to_native(peaks, FS, float(fs), signal if refine else None)


def check_ecg(signal, fs, window: int) -> np.ndarray | None:
    """The signal as float64 (N,), NaNs filled; None (with a warning) when it holds no beats.

    DataError for: not one-dimensional, fs below MIN_FS, shorter than one window.
    """
    if isinstance(fs, bool) or not isinstance(fs, int | float | np.number) or not fs > 0:
        raise DataError(f"the sampling rate must be a positive number of Hz; received {fs!r}")
    if fs < MIN_FS:
        raise DataError(
            f"the sampling rate is {fs:g} Hz; the detector needs at least {MIN_FS:g} Hz, "
            "because below it a QRS complex (80-120 ms) spans too few samples to be found "
            "reliably; record at a higher rate"
        )
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1:
        raise DataError(
            f"expected one ECG lead, a 1-D signal (N,); received shape {signal.shape}: pick "
            "a channel (e.g. signal[:, 0])"
        )
    seconds = window / FS
    if len(signal) < seconds * fs:
        raise DataError(
            f"the record is {len(signal) / fs:.2f} s long ({len(signal)} samples at {fs:g} "
            f"Hz); the detector reads windows of {seconds:g} s: give it at least that much"
        )
    return usable_lead(signal, "the ECG")


def detect_r_peaks(signal: np.ndarray, fs: float, model=None) -> np.ndarray:
    """R-peak sample indices (K,) int64 of a one-lead ECG ``signal`` (N,) sampled at ``fs``.

    model: None (the shipped detector), a run directory, an exported file, or a loaded
    `BeatDetector`. A flat or all-NaN signal gives no beats and a warning.
    """
    detector = model if isinstance(model, BeatDetector) else load_detector(model)
    return detector.detect(signal, fs)


# ---- loading and exporting ------------------------------------------------------------


def load_detector(source: str | Path | None = None) -> BeatDetector:
    """The shipped detector (None), a `dlcc train` run directory, or an exported file."""
    if source is None:
        if not DEFAULT_MODEL.is_file():
            raise DetectorError(
                f"the shipped detector {DEFAULT_MODEL} is missing from this installation; "
                "reinstall dlcc, or pass --model RUN_DIR"
            )
        return _from_file(DEFAULT_MODEL)
    path = Path(source)
    if path.is_dir():
        return _from_run(path)
    if path.is_file():
        return _from_file(path)
    raise DetectorError(
        f"{path} does not exist: pass a run directory of `dlcc train` (task: beats) or a "
        "detector file written by export_detector"
    )


def _build(model_options: dict) -> torch.nn.Module:
    from dlcc.models.ecg import BeatNet

    return BeatNet(**model_options)


def _from_file(path: Path) -> BeatDetector:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged or foreign file: one line, not a traceback
        raise DetectorError(
            f"{path} could not be read as a detector file ({type(error).__name__}); "
            "export it again with export_detector"
        ) from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise DetectorError(
            f"{path} is not a {FORMAT} file; export one from a run with export_detector"
        )
    model = _build(saved["model_options"])
    model.load_state_dict(saved["state_dict"])
    settings = saved["settings"]
    return BeatDetector(
        model=model.eval(),
        threshold=float(settings["threshold"]),
        refractory_s=float(settings["refractory_s"]),
        window=int(settings["window"]),
        hop=int(settings["hop"]),
        source=str(path),
        card=dict(saved.get("card", {})),
    )


def _from_run(run_dir: Path, checkpoint: str = "best") -> BeatDetector:
    from dlcc.segmentation.predictor import load_predictor

    predictor = load_predictor(run_dir, checkpoint, device="cpu")
    if predictor.task != "beats":
        raise DetectorError(
            f"{run_dir} is a {predictor.task!r} run; the beat detector needs a run with "
            "task: beats (e.g. `dlcc train ecg_gru`)"
        )
    from dlcc.runs import read_run

    settings = read_run(run_dir).settings
    options = settings.get("task", {}).get("options", {}) or {}
    data_options = settings.get("data", {}).get("options", {}) or {}
    window = round(float(data_options.get("window_s", 8.0)) * FS)
    return BeatDetector(
        model=predictor.model,
        threshold=float(options.get("threshold", 0.5)),
        refractory_s=float(options.get("refractory_s", 0.2)),
        window=window,
        hop=round(window * HOP_FRACTION),
        source=str(predictor.checkpoint),
        card={"model": settings.get("model", {})},
    )


def tune_threshold(
    run_dir: str | Path, candidates=(0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
) -> tuple[float, dict[float, float]]:
    """The peak threshold with the best pooled F1 on the run's validation records.

    The validation split is rebuilt from the run's own settings (`dlcc.ecg.dataset`: the
    PVC-rich synthetic records), its windows run through the network and stitched back
    into records as `BeatDetector.probabilities` does. Ties go to the threshold nearest
    0.5. Returns (threshold, {candidate: F1}).
    """
    from dlcc.ecg.scoring import match_beats, pooled
    from dlcc.runs import read_run
    from dlcc.training.config import config_from_dict
    from dlcc.training.tasks import load_task_data

    detector = _from_run(Path(run_dir))
    saved = read_run(run_dir)
    _, data = load_task_data(config_from_dict(saved.settings, str(saved.run.config)))
    windows, records = data.extra["windows"]["val"], data.extra["records"]
    with torch.inference_mode():
        scores = torch.sigmoid(detector.model(data.val.inputs.float()))[:, 0].numpy()
    ids = np.asarray(windows["record"])
    traces = {}
    for record in dict.fromkeys(ids.tolist()):
        length = records[record]["length"]
        traces[record] = stitch(scores[ids == record], windows["hop"], length, mode="centre")
    results = {}
    for threshold in candidates:
        per_record = []
        for record, trace in traces.items():
            found = pick_peaks(trace, FS, threshold, detector.refractory_s)
            per_record.append(match_beats(np.asarray(records[record]["beats"]), found, FS))
        results[float(threshold)] = pooled(per_record).f1
    best = max(results, key=lambda t: (results[t], -abs(t - 0.5)))
    return best, results


def export_detector(
    run_dir: str | Path, out: str | Path, *, threshold: float | None = None, card=None
) -> Path:
    """Write RUN_DIR's best detector to ``out`` as plain tensors and numbers (atomically).

    threshold: overrides the run's; card: what to record about it (data, metrics, limits).
    """
    from dlcc.atomic import atomic_write
    from dlcc.runs import read_run

    detector = _from_run(Path(run_dir))
    settings = read_run(run_dir).settings
    model_options = dict(settings.get("model", {}).get("options", {}) or {})
    saved = {
        "format": FORMAT,
        "model_options": model_options,
        "state_dict": {
            key: value.detach().cpu() for key, value in detector.model.state_dict().items()
        },
        "settings": {
            "threshold": float(threshold if threshold is not None else detector.threshold),
            "refractory_s": detector.refractory_s,
            "window": detector.window,
            "hop": detector.hop,
            "fs": FS,
        },
        "card": dict(card or {}),
    }
    out = Path(out)
    with atomic_write(out) as handle:
        torch.save(saved, handle)
    return out
