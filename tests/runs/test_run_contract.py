"""One run-directory contract for both trainers: the same layout and metrics keys, and
`dlcc eval` on a NumPy run and on a torch run; the contract's own pieces."""

from __future__ import annotations

import json

import pytest
import yaml

from dlcc.cli import main
from dlcc.runs import (
    METRIC_KEYS,
    BestTracker,
    History,
    RunDir,
    RunDirError,
    prepare_run_dir,
    read_run,
    settings_differences,
    strict_json,
)

LAYOUT = (
    "config.yaml",
    "history.json",
    "metrics.json",
    "run.json",
    "confusion_matrix.json",
    "history.png",
    "confusion_matrix.png",
    "misclassified.png",
)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A NumPy run and a torch run of a digits classifier, made through the CLI."""
    root = tmp_path_factory.mktemp("contract")
    numpy_run, torch_run = root / "numpy", root / "torch"
    assert (
        main(["numpy", "train", "--model", "mlp", "--epochs", "2", "--no-progress",
              "--out", str(numpy_run)])
        == 0
    )  # fmt: skip
    assert (
        main(["train", "mnist_cnn_smoke", "--set", "train.epochs=2", "--no-progress",
              "--out", str(torch_run)])
        == 0
    )  # fmt: skip
    return {"numpy": numpy_run, "torch": torch_run}


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_both_trainers_write_the_same_layout(two_runs, kind):
    run = RunDir(two_runs[kind], kind)
    for name in LAYOUT:
        assert (run.root / name).is_file(), f"{kind} run lacks {name}"
    assert run.last.is_file() and run.best.is_file()
    assert not list(run.root.glob("*.npz")) and not list(run.root.glob("*.pt"))
    config = yaml.safe_load(run.config.read_text())
    assert config["kind"] == kind and read_run(run.root).task == "classification"
    history = json.loads(run.history.read_text())
    assert set(history) == {"columns", "best_epoch", "stopped_early"}
    for column in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
        assert len(history["columns"][column]) == 2, column
    matrix = json.loads((run.root / "confusion_matrix.json").read_text())
    assert set(matrix) == {"classes", "matrix"} and len(matrix["matrix"]) == 10
    assert sum(map(sum, matrix["matrix"])) == 360  # the digits test split


def test_both_trainers_write_the_same_metrics_keys(two_runs):
    metrics = {
        kind: json.loads((path / "metrics.json").read_text()) for kind, path in two_runs.items()
    }
    for kind, values in metrics.items():
        assert set(METRIC_KEYS) <= set(values), f"{kind}: {set(METRIC_KEYS) - set(values)}"
        assert values["kind"] == kind and values["task"] == "classification"
        assert values["mode"] in ("max", "min") and values["test_checkpoint"] == "best"
        assert 0.5 < values["test_accuracy"] <= 1 and values["test_loss"] > 0
    shared = set(metrics["numpy"]) & set(metrics["torch"])
    assert set(METRIC_KEYS) | {"test_accuracy", "test_loss"} <= shared


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_dlcc_eval_works_on_both_kinds(two_runs, kind, capsys):
    run_dir = two_runs[kind]
    assert main(["eval", str(run_dir)]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert printed["kind"] == kind and printed["split"] == "test"
    assert printed["samples"] == 360
    assert printed["accuracy"] == pytest.approx(saved["test_accuracy"], abs=1e-6)
    assert json.loads((run_dir / "eval_test_best.json").read_text()) == printed
    assert main(["eval", str(run_dir), "--split", "val", "--checkpoint", "last"]) == 0


def test_an_old_numpy_run_directory_gets_one_clear_line(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text(yaml.safe_dump({"model": "cnn", "batch_size": 64}))
    (old / "last.npz").write_bytes(b"")
    assert main(["eval", str(old)]) == 2
    error = capsys.readouterr().err
    assert "older `dlcc numpy train`" in error and "train it again" in error
    assert error.count("\n") == 1


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run directory (no config.yaml)" in capsys.readouterr().err


# ---- the pieces ----------------------------------------------------------------------------


def test_prepare_creates_resumes_and_refuses(tmp_path):
    run = RunDir(tmp_path / "run", "torch")
    settings = {"train": {"epochs": 2, "progress": True}}
    assert prepare_run_dir(run, "classification", settings) is None  # new
    assert read_run(run.root).settings == settings
    run.checkpoints.mkdir()
    run.last.write_bytes(b"checkpoint")
    quiet = {"train": {"epochs": 2, "progress": False}}
    assert prepare_run_dir(run, "classification", quiet, resume_free=["train.progress"]) == (
        run.last
    )
    with pytest.raises(RunDirError, match=r"other settings \(train.epochs: 2 -> 3\)"):
        prepare_run_dir(run, "classification", {"train": {"epochs": 3, "progress": True}})
    with pytest.raises(RunDirError, match=r"other settings \(task: 'classification'"):
        prepare_run_dir(run, "segmentation", settings)
    run.metrics.write_text("{}")
    with pytest.raises(RunDirError, match=r"already holds a finished run"):
        prepare_run_dir(run, "classification", settings)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"not a dlcc run directory"):
        prepare_run_dir(RunDir(stranger, "numpy"), "classification", settings)
    assert (stranger / "notes.txt").read_text() == "mine"


def test_a_task_section_is_the_task_tag(tmp_path):
    run = RunDir(tmp_path / "run", "torch")
    settings = {"task": {"name": "segmentation", "monitor": None}, "train": {"epochs": 1}}
    prepare_run_dir(run, "segmentation", settings)
    saved = read_run(run.root)
    assert saved.task == "segmentation" and saved.settings == settings
    with pytest.raises(ValueError, match="names 'segmentation', not 'classification'"):
        prepare_run_dir(RunDir(tmp_path / "other", "torch"), "classification", settings)


def test_settings_differences_names_each_changed_leaf():
    old = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    new = {"a": {"b": 2, "c": [1, 2]}, "d": "x", "e": None}
    assert settings_differences(old, new) == ["a.b: 1 -> 2"]
    assert settings_differences(old, {"a": {"b": 1}, "d": "y"}) == [
        "a.c: [1, 2] -> None",
        "d: 'x' -> 'y'",
    ]
    assert settings_differences(old, {**old, "d": "y"}, ignore=["d"]) == []


def test_strict_json_writes_null_for_nan_and_infinity():
    text = strict_json({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": {"d": None}}


def test_history_declares_its_columns_and_round_trips():
    history = History(["epoch", "train_loss", "val_loss"])
    history.append(epoch=1, train_loss=0.5, val_loss=float("nan"))
    assert history.val_loss == [None] and history["train_loss"] == [0.5] and len(history) == 1
    with pytest.raises(ValueError, match=r"unknown \['val_dice'\], missing \['val_loss'\]"):
        history.append(epoch=2, train_loss=0.4, val_dice=0.3)
    with pytest.raises(KeyError, match="no column 'accuracy'"):
        history["accuracy"]
    history.best_epoch, history.stopped_early = 1, True
    again = History.from_dict(json.loads(json.dumps(history.to_dict())))
    assert again.to_dict() == history.to_dict()
    with pytest.raises(ValueError, match="not a dlcc history"):
        History.from_dict({"epoch": [1]})  # the layout before dlcc.runs


@pytest.mark.parametrize(
    ("mode", "values", "best_epoch", "stops_at"),
    [
        ("max", [0.5, 0.7, 0.6, 0.65, 0.9], 2, 4),  # patience 2: epochs 3 and 4 are worse
        ("min", [0.5, 0.7, 0.4, 0.4, 0.3], 5, None),  # a tie is not an improvement
    ],
)
def test_best_tracker_picks_the_declared_best_and_stops_early(mode, values, best_epoch, stops_at):
    tracker = BestTracker("val_x", mode, patience=2)
    stopped = None
    for epoch, value in enumerate(values, start=1):
        if tracker.should_stop:
            break
        tracker.update(epoch, value)
        if tracker.should_stop and stopped is None:
            stopped = epoch
    assert stopped == stops_at
    if stops_at is None:
        assert tracker.best_epoch == best_epoch
    else:
        assert tracker.best_epoch == best_epoch and tracker.best_value == values[best_epoch - 1]
    twin = BestTracker("val_x", mode, patience=2)
    twin.load_state_dict(json.loads(json.dumps(tracker.state_dict())))
    assert twin == tracker
    with pytest.raises(ValueError, match="monitored 'val_x' but this run monitors 'val_y'"):
        BestTracker("val_y", mode).load_state_dict(tracker.state_dict())


def test_without_a_monitored_value_every_epoch_is_the_best():
    tracker = BestTracker("val_accuracy", "max", patience=1)
    assert tracker.update(1, None) and tracker.update(2, None)
    assert tracker.best_epoch == 2 and tracker.best_value is None and not tracker.should_stop
