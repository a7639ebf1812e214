"""Reading WFDB ECG records (MIT-BIH style) and writing beat annotations.

A record is a path without extension: ``.../mitdb/100`` names ``100.hea`` (the header),
the signal file(s) it lists (``100.dat``) and annotation files such as ``100.atr``.
`read_record` returns one channel as an `EcgRecord`: the signal in physical units (mV for
MIT-BIH), the sampling rate, and the annotated beats (sample indices at the native rate).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcc.ecg.preprocess import fill_missing
from dlcc.errors import DataError

# The MIT-BIH beat annotation symbols (the PhysioBank "beat" codes); every other
# annotation (rhythm changes "+", noise "~", artefacts "|", "x" non-conducted P wave,
# comments '"', flutter bounds "[" "]" "!", ...) marks no QRS complex and is not a beat.
BEAT_SYMBOLS: tuple[str, ...] = (
    "N",  # normal beat
    "L",  # left bundle branch block beat
    "R",  # right bundle branch block beat
    "B",  # bundle branch block beat (unspecified)
    "A",  # atrial premature beat
    "a",  # aberrated atrial premature beat
    "J",  # nodal (junctional) premature beat
    "S",  # supraventricular premature or ectopic beat
    "V",  # premature ventricular contraction (PVC)
    "r",  # R-on-T premature ventricular contraction
    "F",  # fusion of ventricular and normal beat
    "e",  # atrial escape beat
    "j",  # nodal (junctional) escape beat
    "n",  # supraventricular escape beat
    "E",  # ventricular escape beat
    "/",  # paced beat
    "f",  # fusion of paced and normal beat
    "Q",  # unclassifiable beat
    "?",  # beat not classified during learning
)

# Below this rate a QRS complex (80-120 ms) spans too few samples to be located.
MIN_FS = 100.0

# The signal file formats wfdb 4 reads (format 0, "no signal file", is refused too).
SUPPORTED_FORMATS: tuple[str, ...] = (
    "8", "16", "24", "32", "61", "80", "160", "212", "310", "311", "508", "516", "524",
)  # fmt: skip


@dataclass
class EcgRecord:
    """One channel of an ECG record.

    name: the record's name (e.g. "100"). signal: (N,) float64, physical units of the
    channel (mV for MIT-BIH). fs: samples per second. beats: (K,) int64 sample indices
    (0-based, native rate) of the annotated beats (symbols in BEAT_SYMBOLS), sorted, or
    None when there is no annotation file. channel: the channel's index; channel_name:
    its name in the header (e.g. "MLII"). symbols: (K,) str annotation symbol per beat,
    or None with beats.
    """

    name: str
    signal: np.ndarray
    fs: float
    beats: np.ndarray | None
    channel: int
    channel_name: str
    symbols: np.ndarray | None = None

    @property
    def seconds(self) -> float:
        """The record's duration in seconds."""
        return len(self.signal) / self.fs


def read_record(
    path: str | Path,
    channel: int = 0,
    annotations: str | None = "atr",
    *,
    min_seconds: float = 0.0,
) -> EcgRecord:
    """Read one channel of a WFDB record, and its beat annotations.

    path: the record without extension (``.../mitdb/100``; a trailing ``.hea`` is
    accepted). channel: the 0-based signal index. annotations: the annotation file's
    extension ("atr"), or None to read none; when the file does not exist, beats is None.
    min_seconds: refuse records shorter than this.

    Missing samples (NaN in the physical signal, e.g. WFDB's invalid-sample code) are
    filled by linear interpolation between their finite neighbours (held constant at the
    ends), with a warning. A signal with no finite sample is returned as it is (all NaN),
    and a flat line too: they are not errors here; the detectors warn and find no beats.

    Raises DataError for: no header file; an unreadable header or signal file; a signal
    format wfdb cannot read; a channel out of range; fs below 100 Hz; a record shorter
    than min_seconds; an unreadable annotation file.
    """
    import wfdb  # imported here: reading records is the only use of it

    record_path = _record_path(path)
    header = Path(f"{record_path}.hea")
    name = record_path.name
    if not header.is_file():
        raise DataError(
            f"no WFDB header {header}: expected a record path without extension whose "
            f".hea file exists (e.g. .../mitdb/100 for 100.hea); check the path."
        )
    try:
        head = wfdb.rdheader(str(record_path))
    except Exception as error:  # wfdb raises many kinds; each means "not a header"
        raise DataError(
            f"record {name}: cannot read the header {header} ({_one_line(error)}); expected "
            f"a WFDB header; check the file or download the record again."
        ) from None
    signal_names = list(head.sig_name or [])
    formats = list(head.fmt or [])
    if not signal_names:
        raise DataError(
            f"record {name}: the header {header} lists no signals; expected at least one "
            f"ECG channel; use a record with a signal file."
        )
    if isinstance(channel, bool) or not isinstance(channel, int | np.integer):
        raise DataError(f"record {name}: channel must be an integer index; got {channel!r}.")
    if not 0 <= channel < len(signal_names):
        listed = ", ".join(f"{index}: {label}" for index, label in enumerate(signal_names))
        raise DataError(
            f"record {name}: channel {channel} is out of range; the record has "
            f"{len(signal_names)} channel(s) ({listed}); pass one of those indices."
        )
    channel = int(channel)
    fmt = str(formats[channel]) if channel < len(formats) else "?"
    if fmt not in SUPPORTED_FORMATS:
        raise DataError(
            f"record {name}: channel {channel} is stored in WFDB format {fmt!r}, which "
            f"cannot be read; expected one of {', '.join(SUPPORTED_FORMATS)}; convert the "
            f"record (e.g. with WFDB's xform) to format 16 or 212."
        )
    fs = float(head.fs) if head.fs is not None else 0.0
    if not np.isfinite(fs) or fs < MIN_FS:
        raise DataError(
            f"record {name}: sampling rate {fs:g} Hz is below {MIN_FS:g} Hz; a QRS complex "
            f"(80-120 ms) needs at least that to be located; use a record sampled faster."
        )
    try:
        data = wfdb.rdrecord(str(record_path), channels=[channel], physical=True)
    except Exception as error:
        raise DataError(
            f"record {name}: cannot read the format-{fmt} signal of channel {channel} "
            f"({_one_line(error)}); the .dat file may be missing or truncated; download "
            f"the record again."
        ) from None
    if data.p_signal is None or data.p_signal.ndim != 2 or data.p_signal.shape[1] != 1:
        raise DataError(
            f"record {name}: expected one channel of samples, got "
            f"{None if data.p_signal is None else data.p_signal.shape}; check the record."
        )
    signal = np.asarray(data.p_signal[:, 0], dtype=np.float64)  # (N,)
    seconds = len(signal) / fs
    if seconds < min_seconds or len(signal) == 0:
        raise DataError(
            f"record {name}: {seconds:.2f} s long ({len(signal)} samples at {fs:g} Hz); "
            f"expected at least {max(min_seconds, 1 / fs):g} s; use a longer record."
        )
    signal = fill_missing(signal, f"record {name}")
    beats, symbols = None, None
    if annotations is not None:
        beats, symbols = _read_beats(wfdb, record_path, annotations, len(signal))
    return EcgRecord(
        name=name,
        signal=signal,
        fs=fs,
        beats=beats,
        channel=channel,
        channel_name=str(signal_names[channel]),
        symbols=symbols,
    )


def write_annotations(
    path_stem: str | Path,
    beats: np.ndarray,
    fs: float,
    symbol: str | Sequence[str] = "N",
    *,
    extension: str = "atr",
) -> Path:
    """Write beats as a WFDB annotation file ``<path_stem>.<extension>``, all or nothing.

    beats: (K,) non-negative integer sample indices (native rate); they are sorted, as
    WFDB requires. fs: the record's sampling rate, stored in the file. symbol: one
    annotation symbol for every beat, or one per beat. The file is written in a temporary
    folder beside the destination, read back with wfdb, then moved into place, so a
    failure never leaves a partial file. Returns the written path.
    """
    import wfdb

    stem = _record_path(path_stem)
    beats = np.asarray(beats)
    if beats.ndim != 1 or (beats.size and not np.issubdtype(beats.dtype, np.integer)):
        raise DataError(
            f"write_annotations expects beats as a 1-D array of integer sample indices; "
            f"got dtype {beats.dtype}, shape {beats.shape}; pass e.g. np.int64 indices."
        )
    if beats.size and beats.min() < 0:
        raise DataError(
            f"write_annotations expects sample indices >= 0; got {int(beats.min())}; "
            f"drop the beats before the record's start."
        )
    if not _is_positive(fs):
        raise DataError(f"write_annotations expects fs > 0 (Hz); got {fs!r}.")
    if not extension or not str(extension).isalnum():
        raise DataError(
            f"write_annotations expects an alphanumeric extension such as 'atr'; got {extension!r}."
        )
    order = np.argsort(beats, kind="stable")
    samples = beats[order].astype(np.int64)
    if isinstance(symbol, str):
        symbols = [symbol] * len(samples)
    else:
        symbols = [str(symbol_i) for symbol_i in symbol]
        if len(symbols) != len(samples):
            raise DataError(
                f"write_annotations got {len(symbols)} symbols for {len(samples)} beats; "
                f"pass one symbol, or one per beat."
            )
        symbols = [symbols[index] for index in order]
    destination = Path(f"{stem}.{extension}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".annotations.") as folder:
        try:
            wfdb.wrann(
                stem.name, extension, samples, symbol=symbols, fs=float(fs), write_dir=folder
            )
            written = wfdb.rdann(os.path.join(folder, stem.name), extension)
        except Exception as error:
            raise DataError(
                f"write_annotations: wfdb could not write {destination.name} "
                f"({_one_line(error)}); check the symbols (MIT-BIH codes such as 'N', 'V')."
            ) from None
        if len(written.sample) != len(samples):
            raise DataError(
                f"write_annotations: {destination.name} read back {len(written.sample)} "
                f"annotations, expected {len(samples)}; nothing was written."
            )
        os.replace(os.path.join(folder, destination.name), destination)
    return destination


def _record_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".hea", ".dat") else path


def _read_beats(wfdb, record_path: Path, extension: str, length: int):
    """(beats (K,) int64, symbols (K,) str) from ``record.<extension>``, or (None, None)."""
    if not Path(f"{record_path}.{extension}").is_file():
        return None, None
    try:
        annotation = wfdb.rdann(str(record_path), extension)
    except Exception as error:
        raise DataError(
            f"record {record_path.name}: cannot read the annotation file "
            f"{record_path.name}.{extension} ({_one_line(error)}); pass annotations=None "
            f"to read the signal alone, or download the file again."
        ) from None
    samples = np.asarray(annotation.sample, dtype=np.int64)  # (A,)
    symbols = np.asarray(annotation.symbol, dtype=str)  # (A,)
    keep = np.isin(symbols, BEAT_SYMBOLS) & (samples >= 0) & (samples < length)
    order = np.argsort(samples[keep], kind="stable")
    return samples[keep][order], symbols[keep][order]


def _is_positive(value) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and bool(np.isfinite(value))
        and value > 0
    )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


__all__ = ["BEAT_SYMBOLS", "MIN_FS", "EcgRecord", "read_record", "write_annotations"]
