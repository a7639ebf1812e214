"""Fixtures for the ECG tests: the shared MIT-BIH record 100 (skipped when absent) and
tiny WFDB records written with wfdb.wrsamp."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("DLCC_DATA_DIR") or Path(__file__).parents[3] / "shared/datasets")
RECORD_100 = SHARED / "mitdb" / "100"


@pytest.fixture
def record_100() -> Path:
    """The path of MIT-BIH record 100 (without extension); skips when it is absent."""
    if not Path(f"{RECORD_100}.hea").is_file():
        pytest.skip(f"MIT-BIH record 100 is not in {SHARED / 'mitdb'} (set DLCC_DATA_DIR)")
    return RECORD_100


@pytest.fixture
def write_record(tmp_path):
    """write_record(name, signal (N, C), fs, fmt="16") -> the record path (no extension)."""
    import wfdb

    def write(name: str, signal: np.ndarray, fs: float = 250.0, fmt: str = "16") -> Path:
        signal = np.asarray(signal, dtype=np.float64)
        channels = signal.shape[1]
        wfdb.wrsamp(
            name,
            fs=fs,
            units=["mV"] * channels,
            sig_name=[f"lead{index}" for index in range(channels)],
            p_signal=signal,
            fmt=[fmt] * channels,
            adc_gain=[200.0] * channels,
            baseline=[0] * channels,
            write_dir=str(tmp_path),
        )
        return tmp_path / name

    return write
