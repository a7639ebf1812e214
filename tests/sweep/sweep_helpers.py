"""Shared bits of the sweep tests: a tiny recipe (the digits MLP, about a second a trial),
spaces written per test, and the parsed `dlcc sweep` arguments, so that a test can open the
study itself (to enqueue trials with known values) before running it."""

from __future__ import annotations

from pathlib import Path

import yaml

RECIPE = {
    "data": {"dataset": "digits", "batch_size": 64, "val_size": 157},
    "model": {"name": "mlp", "options": {"hidden": [32]}},
    "optim": {"name": "sgd", "lr": 0.05},
    "schedule": {"name": "none"},
    "train": {"epochs": 3, "deterministic": True, "threads": 1, "progress": False},
}


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sweep_args(*argv: str):
    from dlcc.cli import build_parser

    return build_parser().parse_args(["sweep", *argv])


def prepared(*argv: str):
    """(spec, study) for `dlcc sweep ARGV`, the study opened (created, or loaded with
    --resume) but no trial run."""
    from dlcc.sweep.commands import spec_from_args
    from dlcc.sweep.study import open_study

    args = sweep_args(*argv)
    spec = spec_from_args(args)
    return spec, open_study(spec, resume=args.resume)
