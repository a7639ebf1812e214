"""The window arrays the ECG beat-detection task trains, validates and tests on.

Everything is at the internal rate FS (250 Hz): each record is resampled, its beats
mapped (`dlcc.ecg.preprocess`), then cut into windows of `window_s` seconds (8 s = 2000
samples), each normalised on its own (`normalise`), with a Gaussian heatmap target
(`heatmap`, sigma 20 ms, 1.0 at each beat).

- train: `n_train_records` synthetic records (`random_record`, rates drawn from 128-500
  Hz) and the FIRST half of MIT-BIH record 100, both leads (MLII and V5, each its own
  record id; the annotations are per record, so both leads share the beat times);
  windows every `train_hop_s` (overlapping);
- val: `n_val_records` synthetic records from another seed stream, always with PVCs,
  so thresholds and checkpoints are chosen on data that has them;
- test: the SECOND half of record 100, lead MLII only, and `n_test_records` synthetic
  records at 128 Hz with PVCs.
Validation and test windows overlap by half (`eval_hop_s`); `WindowSet.record` and
`.start` say where each came from, and `EcgWindows.records` holds every record's beats
at FS, so whole-record scores can be made by stitching (`preprocess.stitch`).

Record 100 is read from ``<data dir>/mitdb/100`` (data dir: the argument, else
$DLCC_DATA_DIR, else ~/.cache/dlcc). When it is absent the arrays are synthetic only,
`real_data` is False and `note` says so. Nothing is cached on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlcc.ecg.preprocess import (
    FS,
    beats_to_internal,
    heatmap,
    normalise,
    to_internal,
    window_starts,
    windows,
)
from dlcc.ecg.records import read_record
from dlcc.ecg.synth import random_record
from dlcc.errors import DataError


@dataclass
class WindowSet:
    """One split. x: (n, 1, L) float32 normalised ECG; y: (n, 1, L) float32 heatmaps;
    record: (n,) str, the record id of each window; start: (n,) int64, its first sample
    (at FS) in that record."""

    x: np.ndarray
    y: np.ndarray
    record: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class RecordInfo:
    """A record as the windows saw it: split, source ("synthetic" or "mitdb"), native
    rate fs_native, length (samples at FS), beats (K,) int64 at FS, kinds (K,) str (the
    beat type: 'N'/'V' synthetic, the MIT-BIH symbol for real beats)."""

    split: str
    source: str
    fs_native: float
    length: int
    beats: np.ndarray
    kinds: np.ndarray


@dataclass
class EcgWindows:
    """train, val, test: WindowSets; records: id -> RecordInfo; window, train_hop,
    eval_hop: samples at FS; real_data: whether record 100 is in; note: what was used."""

    train: WindowSet
    val: WindowSet
    test: WindowSet
    records: dict[str, RecordInfo] = field(default_factory=dict)
    window: int = 2000
    train_hop: int = 500
    eval_hop: int = 1000
    real_data: bool = False
    note: str = ""


def build_windows(
    *,
    seed: int = 0,
    n_train_records: int = 40,
    n_val_records: int = 8,
    n_test_records: int = 8,
    record_s: float = 60.0,
    window_s: float = 8.0,
    train_hop_s: float = 2.0,
    eval_hop_s: float = 4.0,
    sigma_s: float = 0.02,
    causal: bool = False,
    target_delay_s: float = 0.0,
    data_dir: str | Path | None = None,
    use_mitdb: bool = True,
) -> EcgWindows:
    """Build the train/val/test window arrays (see the module's docstring).

    seed: the synthetic records come from three independent streams of
    SeedSequence(seed) (train, val, test), so the splits never share a record.
    record_s: each synthetic record's duration. use_mitdb: False to leave record 100
    out even when present. Defaults build in a few seconds.
    causal: prepare every record as the real-time detector does (`dlcc.ecg.realtime`:
    linear resampling and running normalisation over the whole record, no per-window
    normalisation). target_delay_s: the heatmaps' beats are this much after the R-peaks
    (a causal network answers once it has seen the QRS); the records' `beats` are the
    delayed ones, as the targets mark them.
    """
    for name, value in (("n_train_records", n_train_records), ("n_val_records", n_val_records),
                        ("n_test_records", n_test_records)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DataError(f"build_windows expects {name} as an integer >= 0; got {value!r}.")
    window = round(window_s * FS)
    train_hop, eval_hop = round(train_hop_s * FS), round(eval_hop_s * FS)
    if window < 1 or not 1 <= train_hop <= window or not 1 <= eval_hop <= window:
        raise DataError(
            f"build_windows expects 0 < hop <= window; got window {window_s} s, hops "
            f"{train_hop_s} s and {eval_hop_s} s."
        )
    train_stream, val_stream, test_stream = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(3)
    )
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    records: dict[str, RecordInfo] = {}

    def add(record_id, split, source, fs_native, signal_fs, beats_fs, kinds, hop):
        if target_delay_s:  # the targets' beats; past the end: dropped
            beats_fs = beats_fs + round(target_delay_s * FS)
            inside = beats_fs < len(signal_fs)
            kinds = kinds[inside] if len(kinds) == len(inside) else kinds
            beats_fs = beats_fs[inside]
        info = RecordInfo(split, source, float(fs_native), len(signal_fs), beats_fs, kinds)
        records[record_id] = info
        parts[split].append(_cut(record_id, signal_fs, beats_fs, window, hop, sigma_s, causal))

    for index in range(n_train_records):
        synth = random_record(train_stream, record_s)
        signal, beats = _internal(synth.signal, synth.beats, synth.fs, causal)
        add(f"synth-train-{index:03d}", "train", "synthetic", synth.fs, signal, beats,
            synth.kinds, train_hop)  # fmt: skip
    for index in range(n_val_records):
        synth = random_record(val_stream, record_s, ectopic=True)
        signal, beats = _internal(synth.signal, synth.beats, synth.fs, causal)
        add(f"synth-val-{index:03d}", "val", "synthetic", synth.fs, signal, beats,
            synth.kinds, eval_hop)  # fmt: skip
    for index in range(n_test_records):
        synth = random_record(test_stream, record_s, fs=128.0, ectopic=True)
        signal, beats = _internal(synth.signal, synth.beats, synth.fs, causal)
        add(f"synth-test128-{index:03d}", "test", "synthetic", synth.fs, signal, beats,
            synth.kinds, eval_hop)  # fmt: skip

    real_data, note = False, "synthetic records only (use_mitdb=False)"
    if use_mitdb:
        path = _mitdb_path(data_dir)
        if path is None:
            note = (
                "synthetic records only: MIT-BIH record 100 not found under the data dir "
                "(set DLCC_DATA_DIR to the folder holding mitdb/100.hea)"
            )
        else:
            for channel in (0, 1):
                record = read_record(path, channel=channel)
                signal, beats = _internal(record.signal, record.beats, record.fs, causal)
                symbols = record.symbols
                middle = len(signal) // 2
                first = beats < middle
                lead = record.channel_name
                add(f"mitdb-100-{lead}-first", "train", "mitdb", record.fs, signal[:middle],
                    beats[first], symbols[first], train_hop)  # fmt: skip
                if channel == 0:
                    add(f"mitdb-100-{lead}-second", "test", "mitdb", record.fs,
                        signal[middle:], beats[~first] - middle, symbols[~first],
                        eval_hop)  # fmt: skip
            real_data = True
            note = (
                f"synthetic records and MIT-BIH record 100 from {path}: first half "
                f"(MLII, V5) in train, second half (MLII) in test"
            )
    return EcgWindows(
        train=_join(parts["train"], window),
        val=_join(parts["val"], window),
        test=_join(parts["test"], window),
        records=records,
        window=window,
        train_hop=train_hop,
        eval_hop=eval_hop,
        real_data=real_data,
        note=note,
    )


def _internal(signal, beats, fs, causal=False):
    """signal (N,) at fs and beats at fs -> (M,) at FS and beats at FS inside [0, M).

    causal: the real-time detector's preparation (resampled and normalised causally)."""
    if causal:
        from dlcc.ecg.realtime import causal_preprocess

        resampled = causal_preprocess(signal, fs)
    else:
        resampled = to_internal(signal, fs)
    mapped = beats_to_internal(beats, fs)
    return resampled, mapped[(mapped >= 0) & (mapped < len(resampled))]


def _cut(record_id, signal, beats, window, hop, sigma_s, causal=False):
    """(x (n, L), y (n, L), ids (n,), starts (n,)) of one record at FS.

    causal: the signal is normalised already (running estimates): windows as they are."""
    target = heatmap(beats, len(signal), FS, sigma_s)  # (M,)
    x = windows(signal, window, hop, pad="edge")  # (n, L)
    x = (x if causal else normalise(x)).astype(np.float32)
    y = windows(target.astype(np.float64), window, hop, pad="constant").astype(np.float32)
    starts = window_starts(len(signal), window, hop)  # (n,)
    return x, y, np.full(len(x), record_id), starts


def _join(parts, window) -> WindowSet:
    if not parts:
        empty = np.zeros((0, 1, window), dtype=np.float32)
        return WindowSet(empty, empty.copy(), np.zeros(0, dtype=str), np.zeros(0, np.int64))
    return WindowSet(
        x=np.concatenate([p[0] for p in parts])[:, None, :],  # (n, 1, L)
        y=np.concatenate([p[1] for p in parts])[:, None, :],  # (n, 1, L)
        record=np.concatenate([p[2] for p in parts]),
        start=np.concatenate([p[3] for p in parts]).astype(np.int64),
    )


def _mitdb_path(data_dir) -> Path | None:
    from dlcc.data.paths import resolve_data_dir

    path = resolve_data_dir(data_dir) / "mitdb" / "100"
    return path if Path(f"{path}.hea").is_file() and Path(f"{path}.atr").is_file() else None


__all__ = ["EcgWindows", "RecordInfo", "WindowSet", "build_windows"]
