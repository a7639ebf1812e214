"""read_record and write_annotations: record 100, tiny WFDB records, every DataError."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import wfdb

from dlcc.ecg.records import BEAT_SYMBOLS, read_record, write_annotations
from dlcc.errors import DataError

# wfdb 4.3 calls pandas with a keyword pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")


@pytest.mark.shared_data
def test_record_100_has_2273_beats_at_360_hz(record_100):
    record = read_record(record_100)
    assert record.fs == 360.0 and record.name == "100"
    assert record.channel_name == "MLII" and record.signal.shape == (650000,)
    assert record.signal.dtype == np.float64 and np.isfinite(record.signal).all()
    assert len(record.beats) == 2273 and record.beats.dtype == np.int64
    assert np.all(np.diff(record.beats) > 0)
    symbols, counts = np.unique(record.symbols, return_counts=True)
    assert dict(zip(symbols.tolist(), counts.tolist(), strict=True)) == {"N": 2239, "A": 33, "V": 1}
    # the "+" rhythm annotation is not a beat: wfdb's raw file has one more annotation
    raw = wfdb.rdann(str(record_100), "atr")
    assert len(raw.sample) == 2274
    assert read_record(record_100, channel=1).channel_name == "V5"


def test_a_tiny_record_reads_back_in_physical_units(write_record):
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 1, (500, 2))
    path = write_record("tiny", signal, fs=250)
    record = read_record(path, channel=1)
    assert record.fs == 250.0 and record.channel == 1 and record.channel_name == "lead1"
    np.testing.assert_allclose(record.signal, signal[:, 1], atol=1 / 200)  # ADC gain 200/mV
    assert record.beats is None and record.symbols is None  # no annotation file
    assert read_record(f"{path}.hea").signal.shape == (500,)


def test_only_beat_symbols_count_as_beats(write_record, tmp_path):
    path = write_record("ann", np.zeros((1000, 1)))
    symbols = ["N", "+", "V", "~", "|", "A", "x", '"', "/"]
    samples = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    wfdb.wrann("ann", "atr", np.array(samples), symbol=symbols, fs=250, write_dir=str(tmp_path))
    record = read_record(path)
    assert record.beats.tolist() == [10, 30, 60, 90]
    assert record.symbols.tolist() == ["N", "V", "A", "/"]
    assert set(BEAT_SYMBOLS) >= {"N", "V", "A", "/"} and not {"+", "~", "|", "x"} & set(
        BEAT_SYMBOLS
    )


def test_a_missing_header_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"no WFDB header .*nothing\.hea"):
        read_record(tmp_path / "nothing")


def test_an_unreadable_header_is_a_data_error(tmp_path):
    (tmp_path / "bad.hea").write_text("this is not a header\n")
    with pytest.raises(DataError, match="record bad: cannot read the header"):
        read_record(tmp_path / "bad")


def test_an_unsupported_format_is_named(write_record):
    path = write_record("fmt", np.zeros((300, 1)))
    header = path.with_suffix(".hea")
    header.write_text(header.read_text().replace("fmt.dat 16", "fmt.dat 999"))
    with pytest.raises(DataError, match=r"record fmt: .*format '999'"):
        read_record(path)


def test_a_missing_signal_file_is_a_data_error(write_record):
    path = write_record("nodat", np.zeros((300, 1)))
    path.with_suffix(".dat").unlink()
    with pytest.raises(DataError, match=r"record nodat: cannot read the format-16 signal"):
        read_record(path)


def test_a_channel_out_of_range_lists_the_channels(write_record):
    path = write_record("two", np.zeros((300, 2)))
    with pytest.raises(DataError, match=r"channel 2 is out of range.*0: lead0, 1: lead1"):
        read_record(path, channel=2)
    with pytest.raises(DataError, match="channel -1 is out of range"):
        read_record(path, channel=-1)


def test_a_slow_sampling_rate_is_refused_with_the_reason(write_record):
    path = write_record("slow", np.zeros((300, 1)), fs=50)
    with pytest.raises(DataError, match=r"50 Hz is below 100 Hz; a QRS complex"):
        read_record(path)


def test_a_short_record_is_refused_when_a_minimum_is_asked(write_record):
    path = write_record("short", np.zeros((500, 1)), fs=250)  # 2 s
    assert read_record(path, min_seconds=2.0).seconds == 2.0
    with pytest.raises(DataError, match=r"2\.00 s long .*expected at least 10 s"):
        read_record(path, min_seconds=10)


def test_missing_samples_are_interpolated_with_a_warning(write_record):
    signal = np.linspace(0, 1, 400)[:, None].copy()
    signal[100:110] = np.nan
    path = write_record("gaps", signal)
    with pytest.warns(UserWarning, match="10 missing sample"):
        record = read_record(path)
    np.testing.assert_allclose(record.signal, np.linspace(0, 1, 400), atol=1 / 200)


def test_flat_and_all_missing_signals_are_not_errors(write_record):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flat = read_record(write_record("flat", np.ones((400, 1))))
        empty = read_record(write_record("nan", np.full((400, 1), np.nan)))
    assert not [w for w in caught if "dlcc" in w.filename or "missing" in str(w.message)]
    assert np.all(flat.signal == 1.0)
    assert np.isnan(empty.signal).all()


def test_write_annotations_round_trips_through_wfdb(tmp_path):
    beats = np.array([400, 100, 250, 900], dtype=np.int64)
    written = write_annotations(tmp_path / "out" / "rec", beats, fs=360.0, symbol="N")
    assert written == tmp_path / "out" / "rec.atr"
    annotation = wfdb.rdann(str(tmp_path / "out" / "rec"), "atr")
    assert annotation.sample.tolist() == [100, 250, 400, 900]
    assert annotation.symbol == ["N"] * 4 and annotation.fs == 360.0
    write_annotations(tmp_path / "rec2", beats, 250.0, ["N", "V", "N", "A"], extension="qrs")
    assert wfdb.rdann(str(tmp_path / "rec2"), "qrs").symbol == ["V", "N", "N", "A"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "rec2.qrs"]  # no temp dir left


def test_write_annotations_refuses_bad_input_and_writes_nothing(tmp_path):
    with pytest.raises(DataError, match="3 symbols for 2 beats"):
        write_annotations(tmp_path / "r", np.array([1, 2]), 250.0, ["N", "N", "V"])
    with pytest.raises(DataError, match="integer sample indices"):
        write_annotations(tmp_path / "r", np.array([1.5]), 250.0)
    with pytest.raises(DataError, match=">= 0"):
        write_annotations(tmp_path / "r", np.array([-1, 5]), 250.0)
    assert list(tmp_path.iterdir()) == []
