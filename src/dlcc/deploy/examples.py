"""The example ECG the web page offers: made here, by the project's synthetic generator.

12 s at 250 Hz, 72 bpm, a few premature ventricular beats and mild noise, from a fixed
seed, as CSV (``time_s,ecg_mv``). No recorded data is shipped.
"""

from __future__ import annotations

import functools

import numpy as np

EXAMPLE_FS = 250.0
EXAMPLE_SECONDS = 12.0
EXAMPLE_SEED = 100


@functools.lru_cache(maxsize=1)
def ecg_example_csv() -> bytes:
    from dlcc.ecg.synth import synthesize

    record = synthesize(
        EXAMPLE_SECONDS, EXAMPLE_FS, np.random.default_rng(EXAMPLE_SEED), heart_rate=72.0,
        ectopic_fraction=0.1, min_pvcs=1, baseline_wander=0.1, emg_noise=0.02,
    )  # fmt: skip
    lines = ["time_s,ecg_mv"]
    lines += [f"{i / EXAMPLE_FS:.4f},{v:.4f}" for i, v in enumerate(record.signal)]
    return ("\n".join(lines) + "\n").encode("ascii")
