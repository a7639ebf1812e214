"""Real-time R-peak triggers: a causal detector run on a stream, chunk by chunk.

MRI gating needs each R-peak signalled while it happens, not after the record ends. The
offline detector reads 8 s windows in both directions; the real-time one sees only the
past:

1. `LinearResampler`: native rate -> FS (250 Hz) by linear interpolation between the two
   nearest native samples, so an output never waits for more than one native sample;
2. `CausalNormaliser`: (x - baseline) / scale with running estimates, a one-pole
   low-pass baseline (``baseline_s``) and a bias-corrected running mean of |x - baseline|
   (``scale_s``), clipped to ±CLIP;
3. a causal `BeatNet` (``causal: true``) stepped with `BeatNet.stream`, its state carried;
4. a trigger when the beat probability crosses the threshold upwards, at least the
   refractory period after the previous trigger.

The causal recipe trains on windows made by the same two first stages (`dlcc.ecg.dataset`
with ``causal: true``), with targets ``target_delay_s`` after each R-peak: the network
may wait that long, seeing the whole QRS, before it answers. The trigger's R-peak is its
crossing time minus that delay.

Every stage carries its state, and each is exact under any chunking: pushing a record
chunk by chunk gives the same triggers as `run_offline` on the whole record
(`tests/ecg/test_realtime.py`). A trigger's *latency* is the time from the true R-peak to
the end of the chunk in which the trigger was decided (the moment a gating device could
act on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from dlcc.ecg.preprocess import FS
from dlcc.errors import DataError

CLIP = 50.0  # |normalised| never exceeds this (like `preprocess.normalise`)


class LinearResampler:
    """Causal linear-interpolation resampling from ``fs_in`` to ``fs_out``, chunk by chunk.

    Output k is the signal at time k / fs_out, interpolated between the native samples
    on either side; it is emitted once the later of the two has arrived.
    """

    def __init__(self, fs_in: float, fs_out: float = FS):
        if not fs_in > 0 or not fs_out > 0:
            raise DataError(f"LinearResampler expects rates > 0 Hz; got {fs_in!r}, {fs_out!r}")
        self.step = float(fs_in) / float(fs_out)  # input samples per output sample
        self.next = 0  # index k of the next output
        self.seen = 0  # input samples received so far
        self.previous: float | None = None  # the last input sample

    def push(self, x: np.ndarray) -> np.ndarray:
        """(n,) next input samples -> (m,) float64 outputs that are now known."""
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            return np.zeros(0)
        base = self.seen - (0 if self.previous is None else 1)  # index of buf[0]
        buf = x if self.previous is None else np.concatenate([[self.previous], x])
        self.seen += x.size
        last_index = self.seen - 1
        count = int(np.floor(last_index / self.step + 1e-9)) + 1 - self.next
        times = (self.next + np.arange(max(count, 0))) * self.step  # in input samples
        self.next += max(count, 0)
        self.previous = float(x[-1])
        return np.interp(times, base + np.arange(buf.size), buf)


def resample_linear(signal: np.ndarray, fs_in: float, fs_out: float = FS) -> np.ndarray:
    """The whole signal through a fresh `LinearResampler` (what the causal recipe trains on)."""
    return LinearResampler(fs_in, fs_out).push(signal)


class CausalNormaliser:
    """(x - baseline) / scale with running estimates, sample by sample, at rate ``fs``.

    baseline: one-pole low-pass with time constant ``baseline_s``, starting at the first
    sample. scale: a bias-corrected running mean (time constant ``scale_s``) of
    |x - baseline|, so it is an average from the first sample on.
    """

    def __init__(self, fs: float = FS, baseline_s: float = 0.6, scale_s: float = 6.0):
        self.a_baseline = 1.0 - np.exp(-1.0 / (baseline_s * fs))
        self.a_scale = 1.0 - np.exp(-1.0 / (scale_s * fs))
        self.baseline: float | None = None
        self.scale_sum = 0.0  # the running mean before bias correction
        self.weight = 0.0  # 1 - (1 - a) ** n: the bias correction

    def push(self, x: np.ndarray) -> np.ndarray:
        """(n,) samples -> (n,) float64 normalised samples."""
        from scipy.signal import lfilter

        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            return np.zeros(0)
        if self.baseline is None:
            self.baseline = float(x[0])
        a, b = self.a_baseline, self.a_scale
        # baseline[n] = baseline[n-1] + a (x[n] - baseline[n-1]); lfilter with its state
        baseline, _ = lfilter([a], [1.0, -(1.0 - a)], x, zi=[(1.0 - a) * self.baseline])
        deviation = np.abs(x - baseline)
        sums, _ = lfilter([b], [1.0, -(1.0 - b)], deviation, zi=[(1.0 - b) * self.scale_sum])
        n = np.arange(1, x.size + 1)
        weights = 1.0 - (1.0 - self.weight) * (1.0 - b) ** n
        scale = sums / weights
        self.baseline, self.scale_sum, self.weight = (
            float(baseline[-1]),
            float(sums[-1]),
            float(weights[-1]),
        )
        out = (x - baseline) / np.maximum(scale, 1e-12)
        out[scale <= 1e-12] = 0.0  # a flat start: nothing to scale yet
        return np.clip(out, -CLIP, CLIP)


def causal_preprocess(signal: np.ndarray, fs: float) -> np.ndarray:
    """A whole record as the real-time detector sees it: resampled to FS, normalised."""
    return CausalNormaliser().push(resample_linear(signal, fs))


@dataclass
class Trigger:
    """One real-time beat: ``r_peak`` (its estimated R-peak) and ``decided_at`` (the last
    sample of the chunk it was decided in), both native sample indices."""

    r_peak: int
    decided_at: int


@dataclass
class StreamingDetector:
    """A causal BeatNet on a stream of native samples; `push` returns the new triggers.

    model: a causal BeatNet in eval mode; fs: the stream's native rate; threshold,
    refractory_s: the trigger rule; delay_s: the recipe's target delay.
    """

    model: torch.nn.Module
    fs: float
    threshold: float = 0.5
    refractory_s: float = 0.2
    delay_s: float = 0.05
    _resampler: LinearResampler = field(init=False)
    _normaliser: CausalNormaliser = field(init=False)
    _pending: np.ndarray = field(init=False)
    _state: object = field(init=False, default=None)
    _done: int = field(init=False, default=0)  # internal samples through the network
    _last_trigger: float = field(init=False, default=-np.inf)
    _previous_score: float = field(init=False, default=0.0)
    _native_seen: int = field(init=False, default=0)

    def __post_init__(self):
        if not getattr(self.model, "causal", False):
            raise DataError(
                "a real-time detector needs a causal model (model.options.causal: true, "
                "e.g. the ecg_gru_realtime recipe)"
            )
        self.model.eval()
        self._resampler = LinearResampler(self.fs)
        self._normaliser = CausalNormaliser()
        self._pending = np.zeros(0)

    def push(self, samples: np.ndarray) -> list[Trigger]:
        """The next native samples (any number) -> the triggers decided within them."""
        samples = np.asarray(samples, dtype=np.float64).ravel()
        self._native_seen += samples.size
        internal = self._normaliser.push(self._resampler.push(samples))
        self._pending = np.concatenate([self._pending, internal])
        usable = self._pending.size - self._pending.size % 4  # the model steps in fours
        if usable == 0:
            return []
        chunk, self._pending = self._pending[:usable], self._pending[usable:]
        x = torch.from_numpy(chunk.astype(np.float32))[None, None]
        logits, self._state = self.model.stream(x, self._state)
        scores = torch.sigmoid(logits[0, 0]).numpy().astype(np.float64)
        triggers = self._triggers(scores)
        self._done += usable
        return triggers

    def _triggers(self, scores: np.ndarray) -> list[Trigger]:
        gap = self.refractory_s * FS
        before = np.concatenate([[self._previous_score], scores[:-1]])
        crossings = np.flatnonzero((before < self.threshold) & (scores >= self.threshold))
        self._previous_score = float(scores[-1])
        out = []
        ratio = self.fs / FS
        for index in crossings:
            position = self._done + int(index)  # internal sample of the crossing
            if position - self._last_trigger < gap:
                continue
            self._last_trigger = position
            r_peak = max(0, round((position - self.delay_s * FS) * ratio))
            out.append(Trigger(r_peak=r_peak, decided_at=self._native_seen - 1))
        return out


def streaming_detector(run_dir, fs: float) -> StreamingDetector:
    """A `StreamingDetector` for a stream at ``fs`` Hz from a causal run of `dlcc train`
    (its best checkpoint, threshold, refractory period and target delay)."""
    from dlcc.ecg.detector import load_detector
    from dlcc.runs import read_run

    detector = load_detector(run_dir)
    options = read_run(run_dir).settings.get("data", {}).get("options", {}) or {}
    if not options.get("causal"):
        raise DataError(
            f"{run_dir} was not trained on causally prepared records (data.options.causal); "
            "train the ecg_gru_realtime recipe for real-time use"
        )
    return StreamingDetector(
        detector.model,
        fs,
        threshold=detector.threshold,
        refractory_s=detector.refractory_s,
        delay_s=float(options.get("target_delay_s", 0.0)),
    )


def run_stream(detector: StreamingDetector, signal: np.ndarray, chunk: int) -> list[Trigger]:
    """Feed ``signal`` (N,) to ``detector`` ``chunk`` native samples at a time."""
    triggers = []
    for start in range(0, len(signal), chunk):
        triggers.extend(detector.push(signal[start : start + chunk]))
    return triggers


def latencies_ms(triggers: list[Trigger], reference: np.ndarray, fs: float,
                 tolerance_s: float = 0.15) -> np.ndarray:  # fmt: skip
    """For every trigger matched to a reference beat (EC57 matching of the R-peak
    estimates): decided_at - true R-peak, in milliseconds."""
    from dlcc.ecg.scoring import match_pairs

    estimates = np.array([t.r_peak for t in triggers], dtype=np.int64)
    decided = np.array([t.decided_at for t in triggers], dtype=np.int64)
    pairs = match_pairs(np.asarray(reference, dtype=np.int64), estimates, tolerance_s * fs)
    return (decided[pairs[:, 1]] - np.asarray(reference)[pairs[:, 0]]) * 1000.0 / fs
