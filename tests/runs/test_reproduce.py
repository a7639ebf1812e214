"""run.json and `dlcc reproduce`: a run's record is enough to train it again, exactly.

On the CPU, a NumPy run and a deterministic torch run trained again from their run.json
give the same metrics.json to the last digit (the JSON values compared as text). Before
training, `dlcc reproduce` says what may stop that: a dirty tree, another commit, changed
or missing data, other packages, a non-deterministic original. Input that cannot be
reproduced (not a run, an unfinished run, a run.json without a config) gets one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from dlcc.cli import main
from dlcc.runs import read_run
from dlcc.runs.record import run_record
from dlcc.runs.reproduce import check, compare_metrics, is_timing, package_warnings

NUMPY = ["numpy", "train", "--model", "mlp", "--epochs", "3", "--no-progress"]
# The fastest torch smoke recipe (embedded digits), deterministic, two epochs, one thread.
TORCH = ["train", "mnist_cnn_smoke", "--no-progress", "--set", "train.deterministic=true",
         "--set", "train.epochs=2", "--set", "train.threads=1"]  # fmt: skip


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def results(metrics: dict) -> str:
    """metrics.json without the timings, as JSON text: equal text is equal to the last digit."""
    return json.dumps({k: v for k, v in metrics.items() if not is_timing(k)}, sort_keys=True)


def git(folder, *args):
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def git_repo(folder):
    folder.mkdir(exist_ok=True)
    git(folder, "init", "-q")
    git(folder, "config", "user.email", "t@example.org")
    git(folder, "config", "user.name", "t")
    (folder / "analysis.py").write_text("print('v1')\n")
    (folder / ".gitignore").write_text("runs/\n")
    git(folder, "add", ".")
    git(folder, "commit", "-qm", "v1")
    return folder


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def make_pairs(folder, count=24, size=16, seed=0):
    """A folder of image/mask PNGs (a bright disc on noise) for the segmentation recipe."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rows, columns = np.mgrid[:size, :size]
    for index in range(count):
        centre = rng.uniform(size * 0.3, size * 0.7, 2)
        disc = (rows - centre[0]) ** 2 + (columns - centre[1]) ** 2 < (size * 0.2) ** 2
        image = np.clip(0.3 + 0.4 * disc + rng.normal(0, 0.1, (size, size)), 0, 1)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / "images" / f"{index}.png")
        Image.fromarray((disc * 255).astype(np.uint8)).save(folder / "masks" / f"{index}.png")
    return folder


# ---- the record ------------------------------------------------------------------------


def test_run_json_records_how_the_run_was_made(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*NUMPY, "--out", "runs/a"]) == 0
    record = read_json(tmp_path / "runs/a/run.json")
    saved = read_run(tmp_path / "runs/a")
    assert record["config"] == {"kind": "numpy", "task": saved.task, **saved.settings}
    assert record["seeds"]["seed"] == 0 and record["seeds"]["derived"]
    assert record["cwd"] == str(tmp_path.resolve())
    assert record["datasets"][0]["name"] == "digits"
    import numpy

    assert record["packages"]["numpy"] == numpy.__version__
    assert record["hardware"]["cores"] >= 1
    assert set(record["git"]) == {"commit", "dirty"}
    assert record["started"] <= record["finished"]
    assert len(record["sessions"]) == 1 and record["sessions"][0]["finished"]


def test_a_crashed_run_has_its_record_and_a_resumed_one_appends_a_session(
    tmp_path, monkeypatch, capsys
):
    import dlcc.numpy_nn.train as numpy_train

    monkeypatch.chdir(tmp_path)
    real_fit = numpy_train.fit

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the run dies after its directory was prepared

    monkeypatch.setattr(numpy_train, "fit", crash)
    assert main([*NUMPY, "--out", "runs/c"]) == 130
    first = read_json(tmp_path / "runs/c/run.json")
    assert first["config"]["model"]["name"] == "mlp" and first["finished"] is None

    assert main(["reproduce", "runs/c"]) == 2  # unfinished: nothing to compare with
    assert "has not finished" in capsys.readouterr().err

    monkeypatch.setattr(numpy_train, "fit", real_fit)
    assert main([*NUMPY, "--out", "runs/c"]) == 0
    record = read_json(tmp_path / "runs/c/run.json")
    assert record["started"] == first["started"] and record["finished"]
    assert len(record["sessions"]) == 2
    assert record["sessions"][0]["finished"] is None and record["sessions"][1]["finished"]


# ---- reproducing ------------------------------------------------------------------------


@pytest.mark.parametrize("trainer", ["numpy", "torch"])
def test_reproduce_gives_the_same_metrics_to_the_last_digit(trainer, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*(NUMPY if trainer == "numpy" else TORCH), "--out", "runs/x"]) == 0
    capsys.readouterr()
    assert main(["reproduce", "runs/x"]) == 0
    out, err = capsys.readouterr()
    assert "config.yaml differs" not in err and "not deterministic" not in err
    assert "checksum" not in err and "package versions" not in err
    original = read_json(tmp_path / "runs/x/metrics.json")
    again = read_json(tmp_path / "runs/x-reproduced/metrics.json")
    assert results(again) == results(original)
    assert "test_loss" in original and "reproduced: all" in out
    report = read_json(tmp_path / "runs/x-reproduced/reproduction.json")
    assert report["identical"] is True
    assert {row["status"] for row in report["metrics"]} == {"equal", "timing"}
    assert main(["reproduce", "runs/x"]) == 2  # the reproduction is never overwritten
    assert "already holds a finished run" in capsys.readouterr().err


def test_a_differing_last_digit_is_reported_and_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*NUMPY, "--out", "runs/x"]) == 0
    path = tmp_path / "runs/x/metrics.json"
    metrics = read_json(path)
    metrics["test_loss"] = float(np.nextafter(metrics["test_loss"], 1.0))  # one ulp more
    path.write_text(json.dumps(metrics))
    capsys.readouterr()
    assert main(["reproduce", "runs/x", "--out", "runs/y"]) == 1
    out = capsys.readouterr().out
    assert "NOT reproduced: 1 of" in out and "test_loss" in out.splitlines()[-1]


def test_compare_metrics_is_exact_and_skips_timings():
    rows = compare_metrics(
        {"a": 1, "b": 0.1, "c": True, "train_seconds": 3.0, "gone": 1},
        {"a": 1.0, "b": 0.1, "c": 1, "train_seconds": 4.0, "new": 2},
    )
    status = {row["key"]: row["status"] for row in rows}
    assert status == {"a": "differs", "b": "equal", "c": "differs", "train_seconds": "timing",
                      "gone": "differs", "new": "differs"}  # fmt: skip


# ---- the warnings -----------------------------------------------------------------------


@needs_git
def test_a_run_from_a_dirty_tree_warns_that_it_may_not_reproduce(tmp_path, monkeypatch, capsys):
    project = git_repo(tmp_path / "project")
    monkeypatch.chdir(project)
    (project / "analysis.py").write_text("print('v2, not committed')\n")
    assert main([*NUMPY, "--out", "runs/dirty"]) == 0
    assert read_json(project / "runs/dirty/run.json")["git"]["dirty"] is True
    capsys.readouterr()
    assert main(["reproduce", "runs/dirty"]) == 0  # the same code is still here: identical
    err = capsys.readouterr().err
    assert "may not reproduce: uncommitted changes at the time" in err
    assert "git commit differs" not in err


@needs_git
def test_a_run_from_another_commit_warns(tmp_path, monkeypatch, capsys):
    project = git_repo(tmp_path / "project")
    monkeypatch.chdir(project)
    assert main([*NUMPY, "--out", "runs/clean"]) == 0
    saved = read_run(project / "runs/clean")
    from dlcc.runs.record import load_run_record

    record = load_run_record(saved.run)
    assert not any("uncommitted" in warning for warning in check(saved, record))
    (project / "analysis.py").write_text("print('v2')\n")
    git(project, "commit", "-qam", "v2")
    warnings = check(saved, record)
    assert any("the git commit differs" in warning for warning in warnings), warnings


def test_changed_or_missing_data_is_named_before_training(tmp_path, monkeypatch, capsys):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    pairs = make_pairs(tmp_path / "pairs")
    recipe = ["train", "segmentation_smoke", "--no-progress", "--set", f"data.path={pairs}",
              "--set", "train.epochs=2", "--set", "train.deterministic=true",
              "--set", "train.threads=1"]  # fmt: skip
    assert main([*recipe, "--out", "runs/seg"]) == 0
    record = read_json(tmp_path / "runs/seg/run.json")
    assert record["datasets"][0]["name"] == "image_masks" and record["datasets"][0]["sha256"]
    for index in range(24):  # every mask inverted: the data, and so the metrics, change
        mask = pairs / "masks" / f"{index}.png"
        Image.fromarray(255 - np.asarray(Image.open(mask))).save(mask)
    capsys.readouterr()
    assert main(["reproduce", "runs/seg"]) == 1
    captured = capsys.readouterr()
    assert "dataset image_masks: the checksum differs" in captured.err
    assert "NOT reproduced" in captured.out

    shutil.rmtree(pairs)
    saved = read_run(tmp_path / "runs/seg")
    warnings = check(saved, record)
    assert any("dataset image_masks: not found now" in warning for warning in warnings)


def test_a_non_deterministic_torch_run_and_other_packages_are_named():
    record = run_record("torch", ["dlcc"], config={"kind": "torch", "train": {"seed": 0}})
    from dlcc.runs.reproduce import determinism_warnings

    (warning,) = determinism_warnings("torch", record["config"])
    assert "train.deterministic: false" in warning and "last digits" in warning
    assert determinism_warnings("torch", {"train": {"deterministic": True}}) == []
    then = {"torch": "2.1.0", "numpy": "1.26.4", "aaa": "1", "zzz": "1"}
    now = {"torch": "2.13.0", "numpy": "1.26.4", "aaa": "2"}
    (text,) = package_warnings(then, now, {"dlcc": "0.0.1"})
    assert text.index("torch 2.1.0 -> 2.13.0") < text.index("dlcc 0.0.1 ->") < text.index("aaa")
    assert "zzz 1 -> absent" in text and "numpy 1.26.4" not in text


# ---- bad input ---------------------------------------------------------------------------


def test_bad_input_gets_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert main(["reproduce", "empty"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["reproduce", "nowhere"]) == 2
    assert "does not exist" in capsys.readouterr().err

    assert main([*NUMPY, "--out", "runs/old"]) == 0
    capsys.readouterr()
    assert main(["reproduce", "runs/old", "--out", "runs/old"]) == 2
    assert "is the run itself" in capsys.readouterr().err
    path = tmp_path / "runs/old/run.json"
    old = {k: v for k, v in read_json(path).items() if k in ("kind", "command", "dlcc")}
    path.write_text(json.dumps(old))  # a record from before run.json had a config
    capsys.readouterr()
    assert main(["reproduce", "runs/old"]) == 2
    err = capsys.readouterr().err
    assert "has no resolved config" in err and "train it again with the command" in err
    path.unlink()
    assert main(["reproduce", "runs/old"]) == 2
    assert "has no run.json" in capsys.readouterr().err
    assert not (tmp_path / "runs/old-reproduced").exists()


def test_numpy_config_round_trips_to_the_trainers_settings():
    from dlcc.numpy_trainer import charlm
    from dlcc.numpy_trainer.settings import config_sections, resolve_settings, settings_from_config

    settings = resolve_settings("cnn", "digits", {"epochs": 2})
    sections = config_sections(settings, overfit_batch=True, data_dir="/d", progress=False)
    back, options = settings_from_config(sections)
    assert back == settings
    assert options == {"overfit_batch": True, "data_dir": "/d", "progress": False}
    char = charlm.resolve_char_settings("copy", {})
    sections = charlm.config_sections(char, data_dir=None, progress=True)
    back, options = charlm.settings_from_config(sections)
    assert charlm.config_sections(back, **options) == sections
