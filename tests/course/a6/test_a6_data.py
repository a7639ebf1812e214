"""Part 1: data tests (`dlcc.data.checks`): the content hash of each example against hashlib,
whatever the array's layout; exact copies across and within splits, planted in real digits;
and the schema and label checks on the digits as loaded, then on copies broken one rule at
a time (each broken rule must be reported, naming its split, and nothing else)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dlcc.data.checks import check_splits, content_hashes, split_overlap
from dlcc.data.dataset import load_dataset


def sha(example: np.ndarray) -> str:
    return hashlib.sha256(np.array(example, order="C").tobytes()).hexdigest()


def digits():
    return load_dataset("digits", normalize=False)


def splits_of(data) -> dict:
    return {s: (getattr(data, f"x_{s}"), getattr(data, f"y_{s}")) for s in ("train", "val", "test")}


def test_content_hashes_are_the_sha256_of_each_example():
    x = np.random.default_rng(0).random((7, 1, 4, 4)).astype(np.float32)
    got = content_hashes(x)
    assert list(got) == [sha(example) for example in x]
    assert len(set(got)) == 7


def test_content_hashes_do_not_depend_on_the_memory_layout():
    x = np.random.default_rng(1).random((5, 3, 6)).astype(np.float64)
    transposed = np.ascontiguousarray(x.transpose(0, 2, 1)).transpose(0, 2, 1)  # same values
    assert not transposed.flags.c_contiguous
    assert list(content_hashes(transposed)) == [sha(example) for example in x]
    every_other = x[::2]
    assert list(content_hashes(every_other)) == [sha(example) for example in x[::2]]
    copied = np.concatenate([x, x[[1]]])
    assert content_hashes(copied)[5] == content_hashes(x)[1]


def test_split_overlap_finds_planted_copies():
    data = digits()
    x_train, x_val, x_test = data.x_train, data.x_val, data.x_test
    clean = split_overlap({"train": x_train, "val": x_val, "test": x_test})
    assert dict(clean) == {"val_in_train": 0, "test_in_train": 0, "within_train": 0}
    leaked = {
        "train": np.concatenate([x_train, x_train[[5]]]),  # one repeat within training
        "val": np.concatenate([x_val, x_train[[1, 2]]]),  # two validation copies
        "test": np.concatenate([x_test, x_train[[3, 4, 6]], x_val[[0]]]),  # four test copies
    }
    found = split_overlap(leaked)
    assert dict(found) == {"val_in_train": 2, "test_in_train": 4, "within_train": 3}, (
        "within_train counts the repeated training example and the two validation copies "
        "of training examples (train + val as one pool)"
    )


def test_split_overlap_without_a_test_split():
    x = np.random.default_rng(2).random((6, 2)).astype(np.float32)
    found = split_overlap({"train": x[:4], "val": x[3:]})
    assert dict(found) == {"val_in_train": 1, "test_in_train": 0, "within_train": 1}


def test_check_splits_passes_the_digits():
    data = digits()
    assert list(check_splits(splits_of(data), len(data.classes))) == []


def relabel(y, index, label):
    y = y.copy()
    y[index] = label
    return y


def with_nan(x, index):
    x = x.copy()
    x.reshape(-1)[index] = np.nan
    return x


BROKEN = {
    "a float64 split": ("val", lambda x, y: (x.astype(np.float64), y), "float32"),
    "int32 labels": ("test", lambda x, y: (x, y.astype(np.int32)), "int64"),
    "a label out of range": ("train", lambda x, y: (x, relabel(y, 3, 10)), "0..9"),
    "a negative label": ("test", lambda x, y: (x, relabel(y, 0, -1)), "0..9"),
    "a NaN": ("val", lambda x, y: (with_nan(x, 5), y), "NaN"),
    "pixels over 1": ("train", lambda x, y: (x * 16, y), "[0, 1]"),
    "a missing class": ("test", lambda x, y: (x[y != 7], y[y != 7]), "[7]"),
    "another image size": ("test", lambda x, y: (x[:, :, :4, :], y), "(1, 8, 8)"),
    "a label too few": ("val", lambda x, y: (x, y[:-1]), "one label per example"),
}  # fmt: skip


@pytest.mark.parametrize("case", BROKEN)
def test_check_splits_reports_each_broken_rule(case):
    split, breaks, mentioned = BROKEN[case]
    data = digits()
    splits = splits_of(data)
    splits[split] = breaks(*splits[split])
    problems = list(check_splits(splits, len(data.classes)))
    assert problems, f"{case}: no problem reported"
    assert all(p.startswith(f"{split}: ") for p in problems), problems
    assert any(mentioned in p for p in problems), f"{case}: expected {mentioned!r} in {problems}"
