"""R-peak detection scored beat by beat (EC57: within 150 ms, each beat at most once), our
detectors beside neurokit2's classical ones on the same signals, and the detector's speed.

Records (none of them trained on):
- MIT-BIH record 100, second half (15 min, lead MLII): the detectors' training data hold
  its first half only (`dlcc.ecg.dataset`);
- synthetic records with frequent PVCs (ventricular ectopic beats of either polarity,
  with compensatory pauses) and noise, from a seed stream no recipe trains on: 8 at
  128 Hz (the rate of MIT-BIH's other records is 360 Hz; 128 Hz tests the resampling), 8
  at 360 Hz;
Speed: `dlcc ecg detect` on the whole 30-minute 360 Hz record 100, as a user runs it
(subprocess, best of --repeat), and detect_r_peaks alone in this process.

    DLCC_DATA_DIR=../shared/datasets python benchmarks/ecg_eval.py \\
        --model runs/ecg_gru [--model runs/ecg_lstm ...] [--json benchmarks/results/ecg_eval.json]

Without --model the shipped detector is scored.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dlcc.ecg.classical import CLASSICAL_METHODS, classical_detect
from dlcc.ecg.detector import load_detector
from dlcc.ecg.records import read_record
from dlcc.ecg.scoring import match_beats, pooled, score_table
from dlcc.ecg.synth import random_record

BENCH_SEED = 20261201  # no recipe draws from this stream


def held_out_records(data_dir: Path | None, n_synthetic: int, seconds: float) -> list[dict]:
    """{name, signal, fs, beats} of every record scored."""
    records = []
    if data_dir is not None and (data_dir / "mitdb/100.hea").is_file():
        record = read_record(data_dir / "mitdb/100", channel=0)
        middle = len(record.signal) // 2
        keep = record.beats >= middle
        records.append(
            dict(
                name="mitdb-100-MLII-second-half",
                signal=record.signal[middle:],
                fs=record.fs,
                beats=record.beats[keep] - middle,
                source="mitdb",
            )
        )
    streams = np.random.default_rng(BENCH_SEED).spawn(2)
    for fs, stream in zip((128.0, 360.0), streams, strict=True):
        for index in range(n_synthetic):
            synth = random_record(stream, seconds, fs=fs, ectopic=True)
            pvcs = int(np.sum(synth.kinds == "V"))
            records.append(
                dict(
                    name=f"synth-pvc-{int(fs)}hz-{index}",
                    signal=synth.signal,
                    fs=fs,
                    beats=synth.beats,
                    source="synthetic",
                    pvcs=pvcs,
                )
            )
    return records


def score_all(detectors: dict, records: list[dict]) -> list[dict]:
    rows = []
    for record in records:
        found = {name: detect(record["signal"], record["fs"]) for name, detect in detectors.items()}
        for name, beats in found.items():
            score = match_beats(record["beats"], beats, record["fs"])
            rows.append({"record": record["name"], "source": record["source"], "detector": name,
                         **score.as_dict()})  # fmt: skip
    return rows


def summary(rows: list[dict]) -> dict:
    """Per detector: pooled Se/PPV/F1 per source, and the worst record's F1."""
    out = {}
    for detector in dict.fromkeys(row["detector"] for row in rows):
        mine = [row for row in rows if row["detector"] == detector]
        entry = {"worst_f1": min(row["f1"] for row in mine)}
        for source in dict.fromkeys(row["source"] for row in mine):
            chosen = [row for row in mine if row["source"] == source]
            score = pooled([match_counts(row) for row in chosen])
            entry[source] = {key: getattr(score, key) for key in ("se", "ppv", "f1", "fp", "fn")}
            entry[source]["worst_f1"] = min(row["f1"] for row in chosen)
        out[detector] = entry
    return out


def match_counts(row: dict):
    from dlcc.ecg.scoring import BeatScore

    return BeatScore.from_counts(row["tp"], row["fp"], row["fn"])


def time_cli(model: str | None, data_dir: Path, repeat: int) -> list[float]:
    """Wall seconds of `dlcc ecg detect` on record 100 (30 min, 360 Hz), each run."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "-m", "dlcc", "ecg", "detect", str(data_dir / "mitdb/100"),
                       "--out", out]  # fmt: skip
            if model:
                command += ["--model", model]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], help="run dir or file")
    parser.add_argument("--synthetic", type=int, default=8, help="records per rate")
    parser.add_argument("--seconds", type=float, default=300.0, help="per synthetic record")
    parser.add_argument("--repeat", type=int, default=3, help="timed CLI runs (0: no timing)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    env = os.environ.get("DLCC_DATA_DIR")
    data_dir = Path(env) if env else None
    records = held_out_records(data_dir, args.synthetic, args.seconds)
    detectors = {}
    for source in args.model or [None]:
        detector = load_detector(source)
        name = "dlcc-shipped" if source is None else f"dlcc:{Path(source).name}"
        detectors[name] = detector.detect
    for method in CLASSICAL_METHODS:
        detectors[method] = lambda signal, fs, m=method: classical_detect(signal, fs, m)
    rows = score_all(detectors, records)
    print(score_table([(row["record"], row["detector"], match_counts(row)) for row in rows]))
    result = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "records": [
            {k: v for k, v in r.items() if k not in ("signal", "beats")}
            | {"beats": len(r["beats"])}
            for r in records
        ],
        "rows": rows,
        "summary": summary(rows),
    }
    for name, entry in result["summary"].items():
        print(f"{name:>24}: worst record F1 {entry['worst_f1']:.4f}  " + "  ".join(
            f"{source} F1 {entry[source]['f1']:.4f}" for source in entry if source != "worst_f1"
        ))  # fmt: skip
    if args.repeat and data_dir is not None and (data_dir / "mitdb/100.hea").is_file():
        model = args.model[0] if args.model else None
        times = time_cli(model, data_dir, args.repeat)
        record = read_record(data_dir / "mitdb/100", channel=0)
        detector = load_detector(model)
        start = time.perf_counter()
        detector.detect(record.signal, record.fs)
        in_process = time.perf_counter() - start
        result["speed"] = {"cli_seconds": times, "detect_seconds_in_process": in_process,
                           "record": "mitdb/100, 30 min at 360 Hz"}  # fmt: skip
        each = ", ".join(f"{t:.2f}" for t in times)
        print(f"dlcc ecg detect mitdb/100 (30 min): {min(times):.2f} s best of {len(times)} "
              f"({each}); detect() alone {in_process:.2f} s")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
