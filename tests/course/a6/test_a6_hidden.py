"""Assignment 6's hidden tests: the same functions on other cases (random arrays, dtypes and
planted copies; random breakages; random settings, metric documents and sweeps; other names
and Pythons for the stages). Not in a release; graded after submission."""

from __future__ import annotations

import hashlib
import json
import random
import shlex

import numpy as np
from a6_helpers import sweep_summary

from dlcc.data.checks import check_splits, content_hashes, split_overlap
from dlcc.pipeline.stages import training_stage
from dlcc.runs.reproduce import compare_metrics
from dlcc.tracking.compare import differing_params, ranked_trials


def test_split_overlap_random_copies():
    for seed in range(4):
        split_overlap_case(seed)


def split_overlap_case(seed):
    rng = np.random.default_rng(seed)
    dtype = [np.float32, np.float64, np.uint8, np.int16][seed]
    pool = (rng.random((60, 3, 2)) * 100).astype(dtype)
    pool = np.unique(pool, axis=0)
    rng.shuffle(pool)
    train, val, test = pool[:30], pool[30:40], pool[40:]
    val_copies, test_copies = rng.integers(0, 30, 3), rng.integers(0, 40, 4)
    val2 = np.concatenate([val, train[val_copies]])
    test2 = np.concatenate([test, np.concatenate([train, val])[test_copies]])
    found = split_overlap({"train": train, "val": val2, "test": test2})
    assert dict(found) == {"val_in_train": 3, "test_in_train": 4, "within_train": 3}
    fortran = np.asfortranarray(test2)
    assert list(content_hashes(fortran)) == [
        hashlib.sha256(np.ascontiguousarray(e).tobytes()).hexdigest() for e in test2
    ]


def test_check_splits_random_breakages():
    for seed in range(3):
        check_splits_case(seed)


def check_splits_case(seed):
    rng = np.random.default_rng(seed)
    classes = 3 + seed
    splits = {}
    for split, n in (("train", 40), ("val", 12), ("test", 15)):
        y = np.arange(n, dtype=np.int64) % classes
        splits[split] = (rng.random((n, 2, 3)).astype(np.float32), y)
    assert list(check_splits(splits, classes)) == []
    x, y = splits["val"]
    splits["val"] = (x, np.where(y == classes - 1, classes, y))  # a class renumbered
    problems = list(check_splits(splits, classes))
    assert any(p.startswith("val: ") and f"0..{classes - 1}" in p for p in problems), problems
    assert any(p.startswith("val: ") and f"[{classes - 1}]" in p for p in problems), problems
    splits["val"] = (x, y)
    splits["test"] = (splits["test"][0][:, :1], splits["test"][1])  # another example shape
    problems = list(check_splits(splits, classes))
    assert len(problems) == 1 and problems[0].startswith("test: "), problems
    assert list(check_splits({"train": (x * 3 - 1, y)}, classes, pixel_range=None)) == []


def test_differing_params_random_settings():
    rng = random.Random(0)
    keys = [f"section{i}.key{j}" for i in range(3) for j in range(4)]
    runs = []
    for _ in range(4):
        runs.append({"params": {k: str(rng.choice([1, 2])) for k in keys if rng.random() < 0.9}})
    expected = {}
    for key in sorted(keys):
        values = [run["params"].get(key) for run in runs]
        if len(set(values)) > 1:
            expected[key] = values
    got = differing_params(runs)
    assert list(got) == list(expected)
    assert {k: list(v) for k, v in got.items()} == expected


def test_compare_metrics_random_documents():
    rng = random.Random(1)
    keys = [f"test_m{i}" for i in range(8)] + ["train_seconds", "epochs"]
    before = {k: rng.random() for k in keys}
    after = {
        k: (v if rng.random() < 0.5 else v + 1e-16 * rng.choice([0, 1])) for k, v in before.items()
    }
    del after["test_m3"]
    after["test_new"] = 0.5
    rows = list(compare_metrics(before, after))
    assert [r["key"] for r in rows] == [*keys, "test_new"]
    for row in rows:
        key = row["key"]
        if key == "train_seconds":
            expected = "timing"
        elif key in before and key in after and json.dumps(before[key]) == json.dumps(after[key]):
            expected = "equal"
        else:
            expected = "differs"
        assert row["status"] == expected, (key, row)


def test_ranked_trials_random_sweeps():
    for direction in ("maximize", "minimize"):
        ranked_trials_case(direction)


def ranked_trials_case(direction):
    rng = random.Random(2)
    trials = []
    for number in range(25):
        state = rng.choice(["COMPLETE", "COMPLETE", "PRUNED", "FAIL"])
        value = None if state == "FAIL" else round(rng.random(), 1)
        trials.append((number, state, value, {"optim.lr": rng.random()}))
    done = [t for t in trials if t[1] == "COMPLETE" and t[2] is not None]
    sign = -1 if direction == "maximize" else 1
    expected = [t[0] for t in sorted(done, key=lambda t: (sign * t[2], t[0]))]
    assert [t["number"] for t in ranked_trials(sweep_summary(direction, trials))] == expected


def test_training_stage_other_names():
    for python in ["python", "/usr/bin/python3.11", "C:/Program Files/py.exe"]:
        training_stage_case(python)


def training_stage_case(python):
    got = json.loads(
        json.dumps(training_stage("cifar10_mlp", "../recipes/cifar10_mlp.yaml", python))
    )
    assert shlex.split(got["cmd"]) == [
        python, "-m", "dlcc", "train", "../recipes/cifar10_mlp.yaml", "--params",
        "params.yaml:recipes.cifar10_mlp", "--out", "runs/cifar10_mlp", "--no-track",
        "--no-progress",
    ]  # fmt: skip
    assert got["cmd"] == shlex.join(shlex.split(got["cmd"]))
    assert got["params"] == ["recipes.cifar10_mlp"] and got["outs"] == ["runs/cifar10_mlp"]
