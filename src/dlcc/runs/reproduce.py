"""``dlcc reproduce RUN_DIR [--out NEW_DIR]``: train a finished run again and compare.

It reads RUN_DIR/run.json (`dlcc.runs.record`), says before training what may stop the
result from reproducing, trains the recorded resolved config with the trainer that wrote
the run into NEW_DIR (default ``RUN_DIR-reproduced``), then compares the two metrics.json
key by key and prints a table.

The checks, each a warning that says what differs and what it means:
  - the original ran from a git tree with uncommitted changes (the code is not recorded);
  - the original's git commit is not the one checked out here (or here is dirty);
  - a dataset's checksum differs from the recorded one, or the data is not found;
  - package versions differ (torch, numpy and dlcc first);
  - another CPU or GPU, another number of torch threads, another Python;
  - the original was not deterministic (a torch run with ``train.deterministic: false``)
    or stopped on the clock (``train.time_budget``);
  - config.yaml was edited after the run (run.json's config is the one trained).

Exit status: 0 when every metric is identical (the JSON values compared exactly; the
timings, ``*seconds*`` keys, are shown but not compared), 1 when a metric differs, 2 when
the run cannot be reproduced at all (not a run directory, an unfinished run, a run.json
from before the record had a config, an --out that holds a finished run).

NEW_DIR is an ordinary run directory (``dlcc eval`` reads it). It also gets
``reproduction.json``: the warnings and the comparison. Interrupting a reproduction and
repeating the command resumes it, as any training does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dlcc.atomic import write_text_atomic
from dlcc.errors import DlccError

EXIT_IDENTICAL, EXIT_DIFFERS = 0, 1  # 2: DlccError, from dlcc.cli
PACKAGES_FIRST = ("torch", "numpy", "dlcc")
REPORT_NAME = "reproduction.json"


def register(commands) -> None:
    from dlcc.cli_options import add_data_dir_argument

    parser = commands.add_parser(
        "reproduce",
        help="train a finished run again from its run.json and compare the metrics",
        description=(
            "Train RUN_DIR again from the resolved config in its run.json, with the same "
            "trainer, into --out (default RUN_DIR-reproduced), and compare metrics.json key "
            "by key. It warns first about what may stop it reproducing (uncommitted changes, "
            "another commit, changed data, other package versions or hardware, a "
            "non-deterministic run). Exit status 0: every metric identical; 1: some differ; "
            "2: the run cannot be reproduced."
        ),
    )
    parser.add_argument("run_dir", help="a finished run directory (dlcc train, dlcc numpy train)")
    parser.add_argument(
        "--out", default=None, help="the new run directory (default: RUN_DIR-reproduced)"
    )
    add_data_dir_argument(parser)
    parser.set_defaults(handler=reproduce_command)


# ---- what the original was -------------------------------------------------------------


def load_original(run_dir: str | Path):
    """(SavedRun, run.json record, metrics) of a finished run, or a one-line DlccError."""
    from dlcc.runs import RunDirError, read_metrics, read_run
    from dlcc.runs.record import load_run_record

    saved = read_run(run_dir)
    if not saved.run.finished:
        raise RunDirError(
            f"{saved.run.root} has not finished (no metrics.json), so there are no metrics to "
            "compare with; finish it first by repeating its training command (it resumes)"
        )
    record = load_run_record(saved.run)
    if record.get("kind") != saved.kind:
        raise RunDirError(
            f"{saved.run.run_info} is of a {record.get('kind')!r} run but config.yaml of a "
            f"{saved.kind!r} run: the folder was edited; train it again"
        )
    return saved, record, read_metrics(saved.run)


def default_out(run_dir: str | Path) -> Path:
    root = Path(run_dir)
    return root.parent / f"{root.name}-reproduced"


# ---- the checks --------------------------------------------------------------------------


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "unknown"


def git_warnings(record: dict, here: dict) -> list[str]:
    """The original's git state against the one of the current working directory."""
    warnings = []
    then = record.get("git") or {}
    dirty_sessions = [
        index
        for index, session in enumerate(record.get("sessions") or [], 1)
        if (session.get("git") or {}).get("dirty")
    ]
    if then.get("dirty") or dirty_sessions:
        warnings.append(
            f"may not reproduce: uncommitted changes at the time (the original ran from a git "
            f"tree with changes not committed to {_short(then.get('commit'))}); the code that "
            "ran is not recorded anywhere, so this run may use different code"
        )
    if then.get("commit") is None:
        source = (record.get("dlcc_git") or {}).get("commit")
        changes = " with uncommitted changes" if (record.get("dlcc_git") or {}).get("dirty") else ""
        known = (
            f"dlcc's own source was at commit {_short(source)}{changes}"
            if source
            else f"the code is identified only by dlcc {record.get('dlcc')}"
        )
        warnings.append(
            f"the original was not run inside a git repository (cwd {record.get('cwd')}), "
            f"so its own code is not identified; {known}"
        )
    elif here.get("commit") is None:
        warnings.append(
            f"the original ran at git commit {_short(then['commit'])}; the current directory is "
            "not in a git repository, so whether the code is the same cannot be checked"
        )
    elif here["commit"] != then["commit"]:
        warnings.append(
            f"the git commit differs: the original ran at {_short(then['commit'])}, the code "
            f"here is at {_short(here['commit'])}; changes between them may change the "
            f"result (see git diff {_short(then['commit'])} {_short(here['commit'])})"
        )
    if here.get("commit") is not None and here.get("dirty"):
        warnings.append(
            "the working tree here has uncommitted changes: they run now and did not then"
        )
    return warnings


def dataset_warnings(recorded: list[dict], current: list[dict]) -> list[str]:
    """Checksums then against checksums now, dataset by dataset."""
    now = {entry.get("name"): entry for entry in current}
    warnings = []
    for entry in recorded:
        name, then_sha = entry.get("name"), entry.get("sha256")
        if then_sha is None:
            continue  # generated in code (its settings identify it), or absent then too
        found = now.get(name) or {}
        if found.get("sha256") is None:
            warnings.append(
                f"dataset {name}: not found now (the original read {entry.get('folder')}, "
                f"sha256 {then_sha[:12]}); fetch it (dlcc data fetch) or pass --data-dir"
            )
        elif found["sha256"] != then_sha:
            warnings.append(
                f"dataset {name}: the checksum differs (sha256 {then_sha[:12]} then, "
                f"{found['sha256'][:12]} now, in {found.get('folder')}): the data changed since "
                "the run, so the metrics will differ"
            )
    return warnings


def package_warnings(then: dict, now: dict, record: dict) -> list[str]:
    """Versions that differ, torch, numpy and dlcc first, then the others (counted)."""
    then, now = dict(then or {}), dict(now)
    if record.get("dlcc"):
        then.setdefault("dlcc", record["dlcc"])
    import dlcc

    now.setdefault("dlcc", dlcc.__version__)
    changed = [name for name in sorted(set(then) | set(now)) if then.get(name) != now.get(name)]
    if not changed:
        return []
    order = {name: index for index, name in enumerate(PACKAGES_FIRST)}
    changed.sort(key=lambda name: (order.get(name, len(order)), name))

    def text(name: str) -> str:
        return f"{name} {then.get(name, 'absent')} -> {now.get(name, 'absent')}"

    main = [name for name in changed if name in PACKAGES_FIRST]
    others = [name for name in changed if name not in PACKAGES_FIRST]
    parts = [text(name) for name in main] + [text(name) for name in others[:5]]
    more = f" and {len(others) - 5} more" if len(others) > 5 else ""
    meaning = (
        "a different torch or numpy can change the last digits, or more"
        if main
        else "the numerical libraries are the same; these others rarely change results"
    )
    return [f"package versions differ from the original's: {', '.join(parts)}{more} ({meaning})"]


def hardware_warnings(record: dict, now: dict, kind: str, config: dict) -> list[str]:
    warnings = []
    then = record.get("hardware") or {}
    if then.get("cpu") and then.get("cpu") != now.get("cpu"):
        warnings.append(
            f"a different CPU ({then.get('cpu')} then, {now.get('cpu')} now): vectorised "
            "floating-point sums may round differently, so the last digits may differ"
        )
    # A NumPy run uses no GPU (and its record is written before torch is ever imported).
    if kind == "torch" and (then.get("gpus") or []) != (now.get("gpus") or []):
        warnings.append(
            f"different GPUs ({', '.join(then.get('gpus') or []) or 'none'} then, "
            f"{', '.join(now.get('gpus') or []) or 'none'} now): a run on another device "
            "(or on the CPU instead of a GPU) gives different figures"
        )
    train = config.get("train") or {}
    threads_then = record.get("torch_threads")
    if kind == "torch" and not train.get("threads") and threads_then is not None:
        import torch

        if torch.get_num_threads() != threads_then:
            warnings.append(
                f"torch used {threads_then} CPU threads then and {torch.get_num_threads()} "
                "now (train.threads is not set): sums split across threads may round "
                "differently"
            )
    import platform

    if record.get("python") and record["python"] != platform.python_version():
        warnings.append(f"Python {record['python']} then, {platform.python_version()} now")
    return warnings


def determinism_warnings(kind: str, config: dict) -> list[str]:
    train = config.get("train") or {}
    warnings = []
    if kind == "torch" and not train.get("deterministic"):
        warnings.append(
            "the original was not deterministic (train.deterministic: false): PyTorch may "
            "choose non-deterministic kernels, so the figures may differ in the last digits; "
            "train with --set train.deterministic=true for a run that reproduces exactly"
        )
    if train.get("time_budget"):
        warnings.append(
            f"train.time_budget {train['time_budget']}: where the run stopped depended on the "
            "machine's speed, so it may stop at another epoch now"
        )
    return warnings


def check(saved, record: dict, data_dir: str | None = None) -> list[str]:
    """Every warning for reproducing `saved` here and now (empty: nothing known differs)."""
    from dlcc.runs import settings_differences
    from dlcc.runs.provenance import git_state, hardware, installed_packages
    from dlcc.runs.record import datasets_read

    config = record["config"]
    warnings = []
    document = {"kind": saved.kind, **saved.settings}
    if not isinstance(saved.settings.get("task"), dict):
        document["task"] = saved.task
    edited = settings_differences(config, document, ignore=("train.progress",))
    if edited:
        warnings.append(
            f"config.yaml differs from run.json's config ({'; '.join(edited[:3])}): it was "
            "edited after the run; run.json's config is the one trained again"
        )
    warnings += git_warnings(record, git_state(Path.cwd()))
    warnings += dataset_warnings(record.get("datasets") or [], datasets_read(_with_data_dir(
        config, data_dir)))  # fmt: skip
    warnings += package_warnings(record.get("packages") or {}, installed_packages(), record)
    if saved.kind == "torch":
        import torch  # noqa: F401 - so that hardware() sees the GPUs, as the trainer's did

    warnings += hardware_warnings(record, hardware(), saved.kind, config)
    warnings += determinism_warnings(saved.kind, config)
    return warnings


def _with_data_dir(config: dict, data_dir: str | None) -> dict:
    if data_dir is None:
        return config
    data = dict(config.get("data") or {})
    data["data_dir"] = str(Path(data_dir).resolve())
    return {**config, "data": data}


# ---- training again ----------------------------------------------------------------------


def retrain(kind: str, config: dict, out: Path, data_dir: str | None, command: list[str]) -> dict:
    """Train the recorded config with the trainer of `kind`; returns the new metrics."""
    config = _with_data_dir(config, data_dir)
    sections = {key: value for key, value in config.items() if key != "kind"}
    progress = sys.stderr.isatty()
    if kind == "numpy":
        if sections.get("task") == "language_model":
            from dlcc.numpy_trainer.charlm import settings_from_config, train_char_run

            settings, options = _numpy_settings(settings_from_config, sections)
            options["progress"] = progress
            return train_char_run(settings, out, command=command, **options)
        from dlcc.numpy_trainer.run import train_numpy_run
        from dlcc.numpy_trainer.settings import settings_from_config

        settings, options = _numpy_settings(settings_from_config, sections)
        options["progress"] = progress
        return train_numpy_run(settings, out, command=command, **options)
    from dlcc.training.config import check_config, config_from_dict

    trainable = config_from_dict(sections, "run.json config")
    trainable.train.progress = progress
    check_config(trainable)
    if trainable.task.name == "gan":
        from dlcc.gan.trainer import train_gan

        return train_gan(trainable, out, command=command)
    from dlcc.training import loop

    return loop.train(trainable, out, command=command)


def _numpy_settings(inverse, sections: dict):
    try:
        return inverse(sections)
    except (KeyError, TypeError):
        raise DlccError(
            "run.json's config lacks the data/model/optim/schedule/train sections of a "
            "`dlcc numpy train` run: it was edited or damaged"
        ) from None


# ---- comparing ---------------------------------------------------------------------------


def is_timing(key: str) -> bool:
    """A wall-clock figure: it differs on every run and is not compared."""
    return "seconds" in key or "per_second" in key


def compare_metrics(original: dict, reproduced: dict) -> list[dict[str, Any]]:
    """One row per key: {key, original, reproduced, status: equal | differs | timing}.

    The keys of `original` in their order, then those of `reproduced` it lacks. Values are
    compared exactly, as JSON text (`_same`): 0.9583333333333334 equals only itself, true
    is not 1, and 1 is not 1.0. A key on one side only differs, its missing side shown as
    "(absent)". A timing key (`is_timing`) is shown, not compared: status "timing".
    """
    # BEGIN SOLUTION compare_metrics: one row per key, compared as JSON text, timings apart
    rows = []
    for key in [*original, *(key for key in reproduced if key not in original)]:
        before, after = original.get(key, "(absent)"), reproduced.get(key, "(absent)")
        if is_timing(key):
            status = "timing"
        else:
            same = key in original and key in reproduced and _same(before, after)
            status = "equal" if same else "differs"
        rows.append({"key": key, "original": before, "reproduced": after, "status": status})
    return rows
    # END SOLUTION
    # BEGIN PROMPT
    # Walk the keys: original's, then reproduced's new ones. For each, the two values
    # (original.get(key, "(absent)"), the same for reproduced), and a status: "timing" if
    # is_timing(key); else "equal" when the key is on both sides and _same(...) holds;
    # else "differs". Return the rows as dicts with the four keys of the docstring.
    # END PROMPT


def _same(a, b) -> bool:
    """Equal as JSON text: exact for floats, and true is not 1, nor 1 the same as 1.0."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def table(rows: list[dict]) -> str:
    def shown(value) -> str:
        text = json.dumps(value) if not isinstance(value, str) else value
        return text if len(text) <= 40 else text[:37] + "..."

    width = max([len(row["key"]) for row in rows] + [6])
    lines = [f"{'metric':<{width}}  {'original':<40}  {'reproduced':<40}  result"]
    for row in rows:
        result = "time (not compared)" if row["status"] == "timing" else row["status"]
        lines.append(
            f"{row['key']:<{width}}  {shown(row['original']):<40}  "
            f"{shown(row['reproduced']):<40}  {result}"
        )
    return "\n".join(lines)


# ---- the command -------------------------------------------------------------------------


def reproduce(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    data_dir: str | None = None,
    command: list[str] | None = None,
) -> dict:
    """Reproduce RUN_DIR into `out`; returns {out, warnings, rows, identical}."""
    from dlcc.runs import RunDirError, strict_json

    saved, record, original = load_original(run_dir)
    out = Path(out) if out is not None else default_out(saved.run.root)
    if out.resolve() == saved.run.root.resolve():
        raise RunDirError(f"--out {out} is the run itself: choose a new directory")
    if (out / "metrics.json").is_file():
        raise RunDirError(
            f"{out} already holds a finished run (a reproduction done before?); nothing is "
            "overwritten: remove it or choose another --out"
        )
    warnings = check(saved, record, data_dir)
    print(f"dlcc reproduce: {saved.run.root} ({saved.kind}, {saved.task}) -> {out}")
    if warnings:
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
    else:
        print("  no known difference: same commit (clean), data, packages and hardware")
    command = command if command is not None else ["dlcc", "reproduce", *map(str, sys.argv[2:])]
    reproduced = retrain(saved.kind, record["config"], out, data_dir, command)
    rows = compare_metrics(original, reproduced)
    identical = all(row["status"] != "differs" for row in rows)
    report = {
        "original": str(saved.run.root),
        "reproduced": str(out),
        "identical": identical,
        "warnings": warnings,
        "metrics": rows,
    }
    write_text_atomic(out / REPORT_NAME, strict_json(report))
    return {"out": out, "warnings": warnings, "rows": rows, "identical": identical}


def reproduce_command(args: argparse.Namespace) -> int:
    result = reproduce(args.run_dir, args.out, data_dir=args.data_dir)
    rows = result["rows"]
    print(table(rows))
    differing = [row["key"] for row in rows if row["status"] == "differs"]
    compared = sum(row["status"] != "timing" for row in rows)
    if differing:
        print(
            f"NOT reproduced: {len(differing)} of {compared} metrics differ "
            f"({', '.join(differing[:5])}{' ...' if len(differing) > 5 else ''})"
            + ("; see the warnings above for why" if result["warnings"] else "")
        )
        return EXIT_DIFFERS
    print(f"reproduced: all {compared} metrics identical (timings are not compared)")
    return EXIT_IDENTICAL
