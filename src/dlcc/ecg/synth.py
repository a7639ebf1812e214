"""Synthetic ECG with known R-peaks: normal beats, PVCs, and realistic noise.

Each beat is a sum of Gaussian waves placed at a known R time (a beat-by-beat variant of
McSharry et al.'s ECGSYN morphology, written here for full control of the ectopic beats):

- a normal beat ('N'): P, Q, R, S and T waves; the QT interval shortens with the RR
  interval (Bazett: proportional to sqrt(RR));
- a premature ventricular contraction ('V'): no P wave, a wide (sigma 25-40 ms, QRS
  about 120-200 ms), tall main deflection of either polarity with a smaller opposite
  notch, and a broad discordant T wave; it comes early (coupling 55-80 % of the RR, at
  least 0.3 s) and is followed by a compensatory pause (the two intervals sum to 2 RR).

The R-peak convention is the sample of the QRS complex's main extremum in the clean
(noise-free) signal: after placing the waves, each beat's index is moved to the largest
|clean| within ±40 ms of its nominal time, so `beats` are exact extrema of `clean`.

Noise is added on top (amplitudes relative to the record's R amplitude): baseline wander
(0.05-0.5 Hz sinusoids), EMG (band-limited white noise, 20 Hz to 0.45 fs), power-line hum
(50 or 60 Hz) and electrode-motion-like bursts (1-10 Hz noise under a Hann envelope).

Everything is drawn from the `numpy.random.Generator` passed in, so a record is
reproducible from its seed. NumPy and SciPy only (neurokit2's ecgsyn is not used: its
R-peaks are not exactly known and it takes seconds per minute of signal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from dlcc.errors import DataError

# The rates `random_record` draws from when none is given.
SYNTH_RATES: tuple[float, ...] = (128.0, 250.0, 360.0, 500.0)
# Each beat's R index is the |clean| maximum within this distance of its nominal time.
PEAK_SEARCH_S = 0.04
# A Gaussian wave is computed within this many sigmas of its centre only.
WAVE_SIGMAS = 5.0


@dataclass
class SynthRecord:
    """A synthetic ECG. signal: (N,) float64 mV, noisy; clean: (N,) float64 mV, the same
    beats without noise; fs: Hz; beats: (K,) int64 R-peak sample indices (main QRS
    extremum of `clean`), sorted; kinds: (K,) str, 'N' (normal) or 'V' (PVC) per beat;
    params: the parameters it was drawn with."""

    signal: np.ndarray
    clean: np.ndarray
    fs: float
    beats: np.ndarray
    kinds: np.ndarray
    params: dict


def synthesize(
    duration_s: float,
    fs: float,
    rng: np.random.Generator,
    *,
    heart_rate: float = 70.0,
    hrv: float = 0.03,
    ectopic_fraction: float = 0.0,
    bigeminy: bool = False,
    min_pvcs: int = 0,
    amplitude: float = 1.0,
    polarity: int = 1,
    p_amplitude: float = 0.12,
    t_amplitude: float = 0.3,
    qrs_sigma_s: float = 0.010,
    baseline_wander: float = 0.0,
    emg_noise: float = 0.0,
    powerline: float = 0.0,
    powerline_hz: float = 50.0,
    motion_bursts: int = 0,
    motion_amplitude: float = 0.5,
) -> SynthRecord:
    """One synthetic ECG record with known beats.

    duration_s: seconds (>= 1); fs: Hz (>= 100); rng: numpy Generator (all draws).
    heart_rate: mean rate in bpm (20-250); hrv: relative sd of the RR intervals (slow
    random walk plus respiratory sinus arrhythmia); ectopic_fraction: probability that a
    beat is a PVC, in [0, 1); bigeminy: every other beat is a PVC (overrides the fraction);
    min_pvcs: at least this many PVCs (normal beats are turned into PVCs if too few were
    drawn, and if the record has room);
    amplitude: the normal R wave's height in mV; polarity: +1, or -1 to flip the whole
    lead; p_amplitude, t_amplitude: P and T heights relative to R (a T of 0.6+ is "tall");
    qrs_sigma_s: the normal R wave's Gaussian sigma (about QRS/8).
    Noise, relative to `amplitude`: baseline_wander (peak amplitude), emg_noise (sd),
    powerline (peak amplitude) at powerline_hz, motion_bursts (count) of
    motion_amplitude (sd).

    Returns a SynthRecord; its beats are exact main-extremum samples of `clean`.
    """
    _check_range(duration_s, "duration_s", 1.0, 1e6)
    _check_range(fs, "fs", 100.0, 1e5)
    _check_range(heart_rate, "heart_rate", 20.0, 250.0)
    _check_range(ectopic_fraction, "ectopic_fraction", 0.0, 0.99)
    if polarity not in (1, -1):
        raise DataError(f"synthesize expects polarity +1 or -1; got {polarity!r}.")
    if not isinstance(rng, np.random.Generator):
        raise DataError(
            f"synthesize expects a numpy Generator; got {type(rng).__name__}; pass "
            f"np.random.default_rng(seed)."
        )
    fs = float(fs)
    length = round(duration_s * fs)
    r_times, kinds = _beat_times(
        duration_s, rng, heart_rate, hrv, ectopic_fraction, bigeminy, int(min_pvcs)
    )
    rr = 60.0 / heart_rate
    clean = np.zeros(length, dtype=np.float64)
    waves = []  # (centre s, height, sigma s) per wave, all beats
    for r_time, kind in zip(r_times, kinds, strict=True):
        waves.extend(_beat_waves(r_time, kind, rr, rng, p_amplitude, t_amplitude, qrs_sigma_s))
    for centre, height, sigma in waves:
        _add_gaussian(clean, centre * fs, height * amplitude, sigma * fs)
    clean *= polarity
    nominal = np.round(np.asarray(r_times) * fs).astype(np.int64)
    beats = _refine_to_extremum(clean, nominal, round(PEAK_SEARCH_S * fs))
    inside = (beats >= 0) & (beats < length)
    beats, kinds = beats[inside], np.asarray(kinds, dtype="<U1")[inside]
    noise = _noise(
        length, fs, rng, amplitude, baseline_wander, emg_noise, powerline, powerline_hz,
        motion_bursts, motion_amplitude,
    )  # fmt: skip
    params = {
        "duration_s": float(duration_s), "fs": fs, "heart_rate": float(heart_rate),
        "hrv": float(hrv), "ectopic_fraction": float(ectopic_fraction),
        "bigeminy": bool(bigeminy), "min_pvcs": int(min_pvcs),
        "amplitude": float(amplitude), "polarity": int(polarity),
        "p_amplitude": float(p_amplitude), "t_amplitude": float(t_amplitude),
        "qrs_sigma_s": float(qrs_sigma_s), "baseline_wander": float(baseline_wander),
        "emg_noise": float(emg_noise), "powerline": float(powerline),
        "powerline_hz": float(powerline_hz), "motion_bursts": int(motion_bursts),
        "motion_amplitude": float(motion_amplitude),
    }  # fmt: skip
    return SynthRecord(clean + noise, clean, fs, beats, kinds, params)


def random_record(
    rng: np.random.Generator,
    duration_s: float = 60.0,
    fs: float | None = None,
    *,
    ectopic: bool | None = None,
) -> SynthRecord:
    """A record with every parameter drawn from these ranges (uniform unless said):

    - fs: from SYNTH_RATES (128, 250, 360, 500 Hz) when None;
    - heart_rate 45-150 bpm; hrv 0-0.08;
    - PVCs: none with probability 0.4, else a fraction 2-30 %, bigeminy with probability
      0.15 of those; `ectopic=True` always has PVCs (5-30 %, at least one),
      `ectopic=False` never;
    - amplitude 0.3-3 mV (log-uniform); polarity flipped with probability 0.25;
    - P wave 0.05-0.25 of R; T wave 0.1-0.45, tall (0.6-0.9) with probability 0.2;
      QRS sigma 7-13 ms;
    - baseline wander 0-0.5, EMG sd 0-0.08 (0.15 with probability 0.1), power-line hum
      0-0.1 at 50 or 60 Hz with probability 0.5, 0-3 motion bursts of sd 0.2-0.8, all
      relative to the R amplitude.
    """
    if fs is None:
        fs = float(rng.choice(SYNTH_RATES))
    has_pvcs = rng.random() >= 0.4 if ectopic is None else bool(ectopic)
    fraction, bigeminy = 0.0, False
    if has_pvcs:
        fraction = float(rng.uniform(0.05 if ectopic else 0.02, 0.3))
        bigeminy = bool(rng.random() < 0.15)
    tall_t = rng.random() < 0.2
    return synthesize(
        duration_s,
        fs,
        rng,
        heart_rate=float(rng.uniform(45, 150)),
        hrv=float(rng.uniform(0, 0.08)),
        ectopic_fraction=fraction,
        bigeminy=bigeminy,
        min_pvcs=1 if ectopic else 0,
        amplitude=float(np.exp(rng.uniform(np.log(0.3), np.log(3.0)))),
        polarity=-1 if rng.random() < 0.25 else 1,
        p_amplitude=float(rng.uniform(0.05, 0.25)),
        t_amplitude=float(rng.uniform(0.6, 0.9) if tall_t else rng.uniform(0.1, 0.45)),
        qrs_sigma_s=float(rng.uniform(0.007, 0.013)),
        baseline_wander=float(rng.uniform(0, 0.5)),
        emg_noise=float(rng.uniform(0, 0.15) if rng.random() < 0.1 else rng.uniform(0, 0.08)),
        powerline=float(rng.uniform(0, 0.1)) if rng.random() < 0.5 else 0.0,
        powerline_hz=float(rng.choice([50.0, 60.0])),
        motion_bursts=int(rng.integers(0, 4)),
        motion_amplitude=float(rng.uniform(0.2, 0.8)),
    )


def _beat_times(duration_s, rng, heart_rate, hrv, ectopic_fraction, bigeminy, min_pvcs):
    """R times in seconds and kinds ('N'/'V'), covering [0, duration_s)."""
    rr = 60.0 / heart_rate
    times, kinds = [], []
    t = float(rng.uniform(0.1, rr))
    walk = 0.0
    previous_kind = "N"
    respiration_hz = float(rng.uniform(0.15, 0.35))
    while t < duration_s:
        times.append(t)
        if bigeminy:
            kind = "V" if previous_kind == "N" and len(times) > 1 else "N"
        else:
            kind = "V" if previous_kind == "N" and rng.random() < ectopic_fraction else "N"
        kinds.append(kind)
        previous_kind = kind
        # The normal interval drifts (random walk) and breathes (sinus arrhythmia).
        walk = 0.9 * walk + float(rng.normal(0, hrv))
        local_rr = rr * (1 + walk + hrv * np.sin(2 * np.pi * respiration_hz * t))
        local_rr = float(np.clip(local_rr, 0.3, 2.5))
        t += local_rr
    times_array = np.asarray(times)
    kinds_array = np.asarray(kinds)
    for _ in range(max(min_pvcs - int(np.sum(kinds_array == "V")), 0)):
        # a normal beat between two normal beats (not the first) becomes a PVC
        normal = kinds_array == "N"
        eligible = np.flatnonzero(normal & np.r_[False, normal[:-1]] & np.r_[normal[1:], True])
        eligible = eligible[eligible > 0]
        if len(eligible) == 0:
            break
        kinds_array[rng.choice(eligible)] = "V"
    # A PVC comes early (coupling) and the next beat keeps the sinus timing: the two
    # intervals around it sum to about two normal intervals (the compensatory pause).
    for index in np.flatnonzero(kinds_array == "V"):
        previous = times_array[index - 1] if index > 0 else times_array[index] - rr
        normal_interval = times_array[index] - previous
        coupling = max(float(rng.uniform(0.55, 0.8)) * normal_interval, 0.3)
        times_array[index] = previous + min(coupling, normal_interval)
    return times_array.tolist(), kinds_array.tolist()


def _beat_waves(r_time, kind, rr, rng, p_amplitude, t_amplitude, qrs_sigma):
    """(centre s, height relative to R, sigma s) of each wave of one beat."""
    qt_scale = np.sqrt(np.clip(rr, 0.3, 2.0))  # Bazett: QT grows as sqrt(RR)
    jitter = 1 + 0.05 * rng.standard_normal(5)  # small beat-to-beat variation
    if kind == "N":
        return [
            (r_time - 0.17 * qt_scale, p_amplitude * jitter[0], 0.022),  # P
            (r_time - 2.2 * qrs_sigma, -0.12 * jitter[1], qrs_sigma * 0.8),  # Q
            (r_time, 1.0 * jitter[2], qrs_sigma),  # R
            (r_time + 2.4 * qrs_sigma, -0.25 * jitter[3], qrs_sigma * 0.9),  # S
            (r_time + 0.28 * qt_scale, t_amplitude * jitter[4], 0.045 * qt_scale),  # T
        ]
    # PVC: wide main deflection of random polarity, an opposite notch, discordant T.
    sign = 1.0 if rng.random() < 0.5 else -1.0
    width = float(rng.uniform(0.025, 0.04))
    height = float(rng.uniform(1.1, 2.0))
    notch_side = 1.0 if rng.random() < 0.5 else -1.0
    return [
        (r_time, sign * height, width),
        (r_time + notch_side * 1.9 * width, -sign * height * rng.uniform(0.15, 0.35), width * 0.8),
        (r_time + 0.32 * qt_scale, -sign * height * rng.uniform(0.2, 0.4), 0.07 * qt_scale),
    ]


def _add_gaussian(out: np.ndarray, centre: float, height: float, sigma: float) -> None:
    """out += height * exp(-(n - centre)² / 2σ²) within ±WAVE_SIGMAS σ (samples)."""
    reach = WAVE_SIGMAS * sigma
    start = max(int(np.floor(centre - reach)), 0)
    stop = min(int(np.ceil(centre + reach)) + 1, len(out))
    if start >= stop:
        return
    offsets = np.arange(start, stop) - centre  # (w,)
    out[start:stop] += height * np.exp(-0.5 * (offsets / sigma) ** 2)


def _refine_to_extremum(clean: np.ndarray, nominal: np.ndarray, reach: int) -> np.ndarray:
    """Each nominal index moved to the largest |clean| within ±reach samples."""
    refined = nominal.copy()
    for position, centre in enumerate(nominal):
        start, stop = max(centre - reach, 0), min(centre + reach + 1, len(clean))
        if start < stop:
            refined[position] = start + int(np.argmax(np.abs(clean[start:stop])))
    return refined


def _noise(length, fs, rng, amplitude, wander, emg, powerline, powerline_hz, bursts, burst_sd):
    """(length,) float64 noise in mV; every component scaled by `amplitude`."""
    t = np.arange(length) / fs
    noise = np.zeros(length)
    if wander > 0:
        for _ in range(3):  # three sinusoids at 0.05-0.5 Hz, random phases
            hz, phase = rng.uniform(0.05, 0.5), rng.uniform(0, 2 * np.pi)
            noise += (wander / 3) * rng.uniform(0.5, 1.5) * np.sin(2 * np.pi * hz * t + phase)
    if emg > 0:
        high = min(150.0, 0.45 * fs)
        sos = sps.butter(4, [20.0, high], btype="bandpass", fs=fs, output="sos")
        band = sps.sosfilt(sos, rng.standard_normal(length))
        noise += emg * band / max(band.std(), 1e-12)
    if powerline > 0 and powerline_hz < fs / 2:
        noise += powerline * np.sin(2 * np.pi * powerline_hz * t + rng.uniform(0, 2 * np.pi))
    if bursts > 0:
        sos = sps.butter(2, [1.0, 10.0], btype="bandpass", fs=fs, output="sos")
        for _ in range(bursts):
            span = int(rng.uniform(0.5, 3.0) * fs)
            if span >= length:
                continue
            start = int(rng.integers(0, length - span))
            burst = sps.sosfilt(sos, rng.standard_normal(span))
            burst *= np.hanning(span) * burst_sd / max(burst.std(), 1e-12)
            noise[start : start + span] += burst
    return noise * amplitude


def _check_range(value, name: str, low: float, high: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not np.isfinite(value)
        or not low <= value <= high
    ):
        raise DataError(f"synthesize expects {name} in [{low:g}, {high:g}]; got {value!r}.")


__all__ = ["SYNTH_RATES", "SynthRecord", "random_record", "synthesize"]
