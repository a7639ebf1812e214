"""``dlcc ecg detect`` and ``dlcc ecg evaluate``: R-peaks of a WFDB record, and their score.

Both read and check everything first (the record, the detector), compute, and only then
write, each file all-or-nothing: a bad input stops the command before any file exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DETECT_OUTPUTS = """\
Writes, for RECORD_PATH (a WFDB record without its extension, e.g. mitdb/100):
  OUT/<record>.csv      header `sample`, then one R-peak a line: its 0-based sample
                        index at the record's own sampling rate
  OUT/<record>.dlcc     the same beats as a WFDB annotation file (symbol N), readable
                        with wfdb.rdann(OUT/<record>, "dlcc"); none when no beat is found
  OUT/<record>_beats.png  a stretch of the signal with the detected beats (and the
                        record's own annotations, when it has them)
Without --model, the detector shipped with dlcc is used (see its model card:
src/dlcc/ecg/default_model/MODEL_CARD.md).
"""


def register(commands) -> None:
    """Add ``dlcc ecg detect`` and ``dlcc ecg evaluate`` to the top-level sub-parsers."""
    ecg = commands.add_parser("ecg", help="R-peak (beat) detection in ECG records")
    sub = ecg.add_subparsers(dest="ecg_command", required=True)
    detect = sub.add_parser(
        "detect",
        help="R-peaks of a WFDB record: CSV, WFDB annotations and a plot",
        description="Detect the R-peaks of one lead of a WFDB record.",
        epilog=DETECT_OUTPUTS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    detect.add_argument("record", help="a WFDB record path without extension, e.g. mitdb/100")
    _add_model_arguments(detect)
    detect.add_argument("--out", required=True, help="the folder to write into (created)")
    detect.add_argument(
        "--plot-start", type=float, default=0.0, help="seconds: where the plot starts"
    )
    detect.add_argument("--plot-seconds", type=float, default=10.0, help="the plot's length")
    detect.set_defaults(handler=detect_command)

    evaluate = sub.add_parser(
        "evaluate",
        help="score our detector and the classical ones against a record's annotations",
        description=(
            "Score beat detection against each record's own annotations (EC57: a match "
            "within 150 ms, each beat at most once): our detector beside neurokit2's "
            "Pan-Tompkins, Hamilton and default detectors."
        ),
    )
    evaluate.add_argument("records", nargs="+", help="WFDB record paths without extension")
    _add_model_arguments(evaluate)
    evaluate.add_argument(
        "--classical",
        default="neurokit,pantompkins1985,hamilton2002",
        help="comma-separated classical detectors to run beside ours ('' for none)",
    )
    evaluate.add_argument("--json", default=None, help="also write the table as JSON here")
    evaluate.set_defaults(handler=evaluate_command)

    export = sub.add_parser(
        "export",
        help="a run's detector as one file of plain tensors (loaded with weights_only=True)",
        description=(
            "Write a beats run's best detector, with its peak settings, to one file that "
            "`dlcc ecg detect --model FILE` and dlcc.ecg.detect_r_peaks(..., model=FILE) read "
            "without running any code from it."
        ),
    )
    export.add_argument("run_dir", help="a `dlcc train` run directory with task: beats")
    export.add_argument("--out", required=True, help="the file to write, e.g. beatnet.pt")
    threshold = export.add_mutually_exclusive_group()
    threshold.add_argument("--threshold", type=float, default=None, help="override the run's")
    threshold.add_argument(
        "--tune-threshold",
        action="store_true",
        help="pick the threshold with the best F1 on the run's validation records",
    )
    export.add_argument(
        "--card", default=None, help="a JSON file of what to record about it (data, metrics)"
    )
    export.set_defaults(handler=export_command)


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="a `dlcc train` run directory (task: beats) or an exported detector file "
        "(default: the detector shipped with dlcc)",
    )
    parser.add_argument("--channel", type=int, default=0, help="the lead to read (default 0)")


def detect_command(args: argparse.Namespace) -> int:
    from dlcc.atomic import write_text_atomic
    from dlcc.ecg.detector import load_detector
    from dlcc.ecg.records import read_record, write_annotations

    has_annotations = Path(f"{Path(args.record).with_suffix('')}.atr").is_file()
    record = read_record(args.record, channel=args.channel,
                         annotations="atr" if has_annotations else None)  # fmt: skip
    reference = record.beats  # the record's own beat annotations, or None
    detector = load_detector(args.model)
    beats = detector.detect(record.signal, record.fs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / record.name
    write_text_atomic(stem.with_suffix(".csv"), "sample\n" + "".join(f"{int(b)}\n" for b in beats))
    if len(beats):  # WFDB has no empty annotation file: none is written then
        write_annotations(stem, beats, record.fs, "N", extension="dlcc")
    else:
        print(f"{record.name}: no beats detected, so no {stem.name}.dlcc annotation file")
    plot_beats(
        record.signal,
        record.fs,
        beats,
        reference,
        out / f"{record.name}_beats.png",
        start_s=args.plot_start,
        seconds=args.plot_seconds,
        title=f"{record.name} ({record.channel_name}): {len(beats)} beats detected",
    )
    minutes = len(record.signal) / record.fs / 60
    rate = len(beats) / minutes if minutes else 0.0
    print(
        f"{record.name}: {len(beats)} beats in {minutes:.1f} min ({rate:.0f} per minute) "
        f"-> {stem}.csv, {stem}.dlcc, {record.name}_beats.png"
    )
    if reference is not None:
        from dlcc.ecg.scoring import match_beats

        score = match_beats(reference, beats, record.fs)
        print(
            f"against the record's annotations ({len(reference)} beats): Se {score.se:.4f} "
            f"PPV {score.ppv:.4f} F1 {score.f1:.4f} (FP {score.fp}, FN {score.fn})"
        )
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    from dlcc.atomic import write_text_atomic
    from dlcc.ecg.classical import CLASSICAL_METHODS, classical_detect
    from dlcc.ecg.detector import load_detector
    from dlcc.ecg.records import read_record
    from dlcc.ecg.scoring import match_beats, score_table
    from dlcc.errors import DataError

    methods = [name for name in args.classical.split(",") if name]
    unknown = [name for name in methods if name not in CLASSICAL_METHODS]
    if unknown:
        raise DataError(
            f"--classical: unknown {', '.join(unknown)}; expected a comma-separated list of "
            f"{', '.join(CLASSICAL_METHODS)}"
        )
    detector = load_detector(args.model)
    records = []
    for path in args.records:  # every record is read (and checked) before any scoring
        record = read_record(path, channel=args.channel)
        if record.beats is None:
            raise DataError(
                f"{path}: no annotation file ({Path(path).with_suffix('')}.atr) to score "
                "against; `dlcc ecg detect` finds beats without one"
            )
        records.append(record)
    scored = []  # (record, detector, BeatScore)
    for record in records:
        found = {"dlcc": detector.detect(record.signal, record.fs)}
        for method in methods:
            found[method] = classical_detect(record.signal, record.fs, method)
        for name, beats in found.items():
            scored.append((record.name, name, match_beats(record.beats, beats, record.fs)))
    print(score_table(scored))
    rows = [{"record": r, "detector": d, **score.as_dict()} for r, d, score in scored]
    if args.json:
        write_text_atomic(args.json, json.dumps({"rows": rows}, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def export_command(args: argparse.Namespace) -> int:
    from dlcc.ecg.detector import export_detector
    from dlcc.errors import DataError

    card = {}
    if args.card:
        try:
            card = json.loads(Path(args.card).read_text())
        except (OSError, ValueError) as error:
            raise DataError(f"--card {args.card}: not a readable JSON file ({error})") from None
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise DataError(f"--threshold: expected a probability in (0, 1), received {args.threshold}")
    if args.tune_threshold:
        from dlcc.ecg.detector import tune_threshold

        args.threshold, table = tune_threshold(args.run_dir)
        print(
            "validation F1 by threshold: " + ", ".join(f"{t:g}: {f:.4f}" for t, f in table.items())
        )
        card["threshold"] = {"chosen": args.threshold, "validation_f1": table}
    path = export_detector(args.run_dir, args.out, threshold=args.threshold, card=card)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def plot_beats(signal, fs, beats, reference, path, *, start_s=0.0, seconds=10.0, title=""):
    """A stretch of `signal` with the detected (and annotated) beats marked, saved to path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from dlcc.plots import save_figure

    first = max(0, min(int(start_s * fs), len(signal) - 1))
    last = min(len(signal), first + max(1, int(seconds * fs)))
    time = np.arange(first, last) / fs
    figure, axis = plt.subplots(figsize=(11, 3))
    axis.plot(time, signal[first:last], lw=0.7, color="black")
    shown = beats[(beats >= first) & (beats < last)]
    axis.plot(shown / fs, signal[shown], "x", color="red", ms=7, label="detected")
    if reference is not None:
        truth = reference[(reference >= first) & (reference < last)]
        axis.plot(truth / fs, signal[truth], "o", mfc="none", color="green", ms=9,
                  label="annotated")  # fmt: skip
    axis.set_xlabel("seconds")
    axis.set_title(title, fontsize=9)
    axis.legend(loc="upper right", fontsize=8)
    save_figure(figure, path)
