"""Golden metrics: a smoke recipe's figures, held to a committed file with tolerances.

The other tests check properties; this one checks the result. A change anywhere in the
path from the data to metrics.json (a loader, an augmentation, an initialisation, the
loss, the schedule) that moves the figures fails it, so that the change is noticed and
decided on rather than found months later as "the model got worse".

Why tolerances, when the CPU run is deterministic? On this machine it repeats to the last
digit (`tests/runs/test_reproduce.py` holds it to that). Another CPU, another BLAS or
another torch rounds a few sums differently, and over hundreds of steps the last digits
drift. The tolerances below are wider than that drift and narrower than what a real
change does (a broken augmentation or a wrong learning rate moves accuracy by several
points). Counts (epochs, best epoch) must match exactly.

When a change is meant to move the figures, update the file and commit it with the
change, saying why::

    DLCC_UPDATE_GOLDEN=1 pytest tests/ml/test_ml_golden.py
    git diff tests/ml/golden/
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest

from dlcc.atomic import write_text_atomic
from dlcc.cli import main
from dlcc.runs import strict_json
from dlcc.runs.provenance import hardware

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DLCC_UPDATE_GOLDEN") == "1"
# What each smoke run is: the command (after `dlcc`), and the figures with their tolerance.
RUNS = {
    "mnist_cnn_smoke": {
        "command": ["train", "mnist_cnn_smoke", "--no-progress", "--set",
                    "train.deterministic=true", "--set", "train.threads=1",
                    "--set", "train.device=cpu"],
        "tolerances": {"test_accuracy": 0.02, "test_loss": 0.05, "best_value": 0.02},
        "exact": ["epochs", "parameters", "test_samples"],
    },
    "numpy_mlp_digits": {
        "command": ["numpy", "train", "--model", "mlp", "--dataset", "digits", "--epochs", "10",
                    "--no-progress"],
        "tolerances": {"test_accuracy": 0.01, "test_loss": 0.02, "best_value": 0.02},
        # not best_epoch: the annealed last epochs have close val_loss values, and another
        # machine's rounding may pick a neighbour; the figures are held instead
        "exact": ["epochs", "parameters"],
    },
}  # fmt: skip


@pytest.mark.parametrize("name", RUNS)
def test_smoke_metrics_match_the_golden_file(name, tmp_path, monkeypatch, capsys):
    """The smoke run's figures are within their tolerances of tests/ml/golden/NAME.json."""
    spec = RUNS[name]
    monkeypatch.chdir(tmp_path)
    assert main([*spec["command"], "--out", "run"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        import numpy
        import torch

        golden = {
            "command": ["dlcc", *spec["command"]],
            "metrics": {key: metrics[key] for key in [*spec["tolerances"], *spec["exact"]]},
            "tolerances": spec["tolerances"],
            "measured_on": {"cpu": hardware()["cpu"], "python": platform.python_version(),
                            "torch": torch.__version__, "numpy": numpy.__version__},
        }  # fmt: skip
        write_text_atomic(path, strict_json(golden))
        pytest.skip(f"DLCC_UPDATE_GOLDEN=1: wrote {path}; review `git diff` and commit it")
    assert path.is_file(), f"no {path}: create it with DLCC_UPDATE_GOLDEN=1 (see the docstring)"
    golden = json.loads(path.read_text())
    assert golden["command"] == ["dlcc", *spec["command"]], "the run changed: update the file"
    far = {
        key: (metrics[key], expected, golden["tolerances"][key])
        for key, expected in golden["metrics"].items()
        if key in golden["tolerances"] and abs(metrics[key] - expected) > golden["tolerances"][key]
    }
    assert not far, f"{name}: (now, golden, tolerance) {far}; if intended, see the docstring"
    for key in spec["exact"]:
        assert metrics[key] == golden["metrics"][key], (key, metrics[key], golden["metrics"][key])
