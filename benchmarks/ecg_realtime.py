"""The real-time detector on a stream: F1 of its triggers and their latency, chunk by chunk.

Each held-out record (those of `benchmarks/ecg_eval.py`: the second half of MIT-BIH record
100 and PVC-rich synthetic records at 128 and 360 Hz) is fed to a `StreamingDetector` in
chunks of --chunk-ms of native samples, as an acquisition would deliver them. A trigger's
R-peak estimate is scored against the annotations (EC57, 150 ms); its latency is the end
of the chunk in which it was decided minus the true R-peak. The same model is also run on
each whole record in one push (the offline run): the triggers must be the same.

    DLCC_DATA_DIR=../shared/datasets python benchmarks/ecg_realtime.py runs/ecg_gru_realtime \\
        [--chunk-ms 40] [--json benchmarks/results/ecg_realtime.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from dlcc.ecg.realtime import latencies_ms, run_stream, streaming_detector
from dlcc.ecg.scoring import match_beats, pooled
from ecg_eval import held_out_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--chunk-ms", type=float, default=40.0)
    parser.add_argument("--synthetic", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    env = os.environ.get("DLCC_DATA_DIR")
    records = held_out_records(Path(env) if env else None, args.synthetic, args.seconds)
    rows, all_latencies, scores, agree = [], [], [], True
    for record in records:
        fs = record["fs"]
        chunk = max(1, round(args.chunk_ms / 1000 * fs))
        start = time.perf_counter()
        triggers = run_stream(streaming_detector(args.run_dir, fs), record["signal"], chunk)
        seconds = time.perf_counter() - start
        offline = streaming_detector(args.run_dir, fs).push(record["signal"])
        same = [t.r_peak for t in triggers] == [t.r_peak for t in offline]
        agree &= same
        estimates = np.array([t.r_peak for t in triggers], dtype=np.int64)
        score = match_beats(record["beats"], estimates, fs)
        latency = latencies_ms(triggers, record["beats"], fs)
        scores.append(score)
        all_latencies.append(latency)
        rows.append({
            "record": record["name"], **score.as_dict(),
            "latency_median_ms": float(np.median(latency)) if latency.size else None,
            "latency_p95_ms": float(np.percentile(latency, 95)) if latency.size else None,
            "stream_equals_offline": same,
            "realtime_factor": len(record["signal"]) / fs / seconds,
        })  # fmt: skip
        print(f"{record['name']:>28}: F1 {score.f1:.4f} (FP {score.fp}, FN {score.fn}) "
              f"latency median {rows[-1]['latency_median_ms']:.0f} ms, p95 "
              f"{rows[-1]['latency_p95_ms']:.0f} ms; stream == offline: {same}; "
              f"{rows[-1]['realtime_factor']:.0f}x real time")  # fmt: skip
    latency = np.concatenate(all_latencies)
    total = pooled(scores)
    summary = {
        "f1": total.f1, "se": total.se, "ppv": total.ppv,
        "worst_f1": min(s.f1 for s in scores),
        "latency_median_ms": float(np.median(latency)),
        "latency_p95_ms": float(np.percentile(latency, 95)),
        "stream_equals_offline": agree, "chunk_ms": args.chunk_ms,
    }  # fmt: skip
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
