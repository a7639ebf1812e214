"""build_windows: shapes, normalised inputs, heatmaps on the right beats, provenance,
PVCs in validation, and record 100 split in halves when it is there."""

from __future__ import annotations

import numpy as np
import pytest

from dlcc.ecg.dataset import build_windows
from dlcc.ecg.preprocess import FS, heatmap, pick_peaks

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")

SMALL = {"n_train_records": 3, "n_val_records": 2, "n_test_records": 2, "record_s": 20.0}


def test_synthetic_windows_have_documented_shapes_and_provenance():
    data = build_windows(use_mitdb=False, **SMALL)
    assert not data.real_data and "synthetic records only" in data.note
    assert data.window == 2000 and data.train_hop == 500 and data.eval_hop == 1000
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.float32
        assert split.x.shape == split.y.shape and split.x.shape[1:] == (1, 2000)
        assert len(split.record) == len(split.start) == len(split.x)
        np.testing.assert_allclose(np.median(split.x[:, 0], axis=1), 0, atol=1e-5)
    assert len(set(data.train.record)) == 3
    # each target window is the record's heatmap at FS, cut at its start
    for index in (0, len(data.val) - 1):
        info = data.records[data.val.record[index]]
        start = data.val.start[index]
        full = heatmap(info.beats, info.length, FS)
        expected = np.zeros(2000, np.float32)
        piece = full[start : start + 2000]
        expected[: len(piece)] = piece
        np.testing.assert_array_equal(data.val.y[index, 0], expected)
        inside = info.beats[(info.beats >= start) & (info.beats < start + 2000)] - start
        found = pick_peaks(data.val.y[index, 0].astype(np.float64))
        assert set(found) <= set(inside)
    for record_id, info in data.records.items():
        if info.split in ("val", "test"):
            assert "V" in set(info.kinds), record_id  # PVCs always in val and test
        if info.split == "test":
            assert info.fs_native == 128.0


def test_windows_are_deterministic_and_the_splits_differ():
    first = build_windows(use_mitdb=False, seed=1, **SMALL)
    again = build_windows(use_mitdb=False, seed=1, **SMALL)
    np.testing.assert_array_equal(first.train.x, again.train.x)
    assert not np.array_equal(first.val.x[:1], first.test.x[:1])


@pytest.mark.shared_data
def test_record_100_is_split_in_halves(record_100):
    data = build_windows(data_dir=record_100.parents[1], **SMALL)
    assert data.real_data and "record 100" in data.note
    first = data.records["mitdb-100-MLII-first"]
    second = data.records["mitdb-100-MLII-second"]
    assert first.split == "train" and second.split == "test"
    assert data.records["mitdb-100-V5-first"].split == "train"
    assert len(first.beats) + len(second.beats) == 2273
    assert first.length + second.length == round(650000 * 250 / 360)
    assert "mitdb-100-MLII-second" in set(data.test.record)
    assert "mitdb-100-MLII-first" not in set(data.test.record)


def test_the_signal_modules_import_without_torch():
    import subprocess
    import sys

    code = (
        "import sys; import dlcc.ecg.records, dlcc.ecg.synth, dlcc.ecg.preprocess, "
        "dlcc.ecg.scoring, dlcc.ecg.classical, dlcc.ecg.dataset; "
        "print(sorted(m for m in ('torch', 'neurokit2', 'wfdb') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"  # torch never; neurokit2 and wfdb only when used
