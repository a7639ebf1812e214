"""Data tests: check a dataset before trusting any figure computed on it (``dlcc data check``).

A model trained on broken data fails silently: it trains, and its figures are wrong. The
cheapest place to catch that is the data itself, before training:

- **schema**: the dtypes, shapes and value range the code after it assumes;
- **label range**: every label is a class index 0..K-1, and every class is present in
  every split (a class missing from the test split makes its accuracy undefined);
- **no train/test overlap**: an example in both splits is memorised, not generalised, and
  inflates the test figure. Indices cannot show it (a file copied twice has two indices),
  so the check compares content: the sha256 of each example's bytes.

Exact hashes find exact copies only; a shifted or re-encoded image needs a perceptual
hash. ``dlcc data check NAME`` runs all three on a registry dataset (unscaled, as loaded
for training) and exits 1 when it finds a problem. The tests of tests/ml use the same
functions.
"""

from __future__ import annotations

import hashlib

import numpy as np

SPLITS = ("train", "val", "test")


def content_hashes(examples: np.ndarray) -> list[str]:
    """The sha256 (hex) of each example's bytes: one per row of the first axis."""
    # BEGIN SOLUTION content_hashes: sha256 of each example's bytes, in C order
    examples = np.ascontiguousarray(examples)
    return [hashlib.sha256(example.tobytes()).hexdigest() for example in examples]
    # END SOLUTION
    # BEGIN PROMPT
    # examples: an array (N, ...) of any dtype, possibly a non-contiguous view (a slice, a
    # transpose). Return N hex strings, hashlib.sha256 of each example's bytes. Two
    # examples with the same values (and dtype) must get the same hash however the array
    # is laid out in memory: make it C-contiguous first (np.ascontiguousarray), then
    # example.tobytes().
    # END PROMPT


def count_overlap(first: list[str], second: list[str]) -> int:
    """How many examples of `second` have an exact copy in `first` (hashes as given)."""
    seen = set(first)
    return sum(digest in seen for digest in second)


def split_overlap(splits: dict[str, np.ndarray]) -> dict[str, int]:
    """Exact copies across and within splits, from {"train": x, "val": x, "test": x}.

    Returns {"val_in_train": validation examples with a copy in train, "test_in_train":
    test examples with a copy in train or val, "within_train": train and val examples that
    repeat an earlier one of train + val}. A split that is absent or empty counts 0.
    """
    # BEGIN SOLUTION split_overlap: count val/test examples whose hash is in train (train+val)
    hashes = {split: content_hashes(splits[split]) if split in splits else [] for split in SPLITS}
    seen = hashes["train"] + hashes["val"]
    return {
        "val_in_train": count_overlap(hashes["train"], hashes["val"]),
        "test_in_train": count_overlap(seen, hashes["test"]),
        "within_train": len(seen) - len(set(seen)),
    }
    # END SOLUTION
    # BEGIN PROMPT
    # Hash every split's examples with content_hashes (a missing split has none). Then
    # count, with count_overlap (above): validation examples whose hash is among the
    # training ones; test examples whose hash is among the training + validation ones;
    # and the repeats inside training + validation (the number of hashes minus the
    # number of distinct ones). Return the dict with the three keys of the docstring.
    # END PROMPT


def check_splits(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], classes: int, pixel_range=(0.0, 1.0)
) -> list[str]:
    """The schema and label problems of {split: (x, y)}: one line per problem; [] if none.

    The rules, checked for every split in the order of `splits`, each problem starting
    with the split's name and a colon:
      - x is float32, y is int64 (``"train: x is float64, expected float32"``);
      - y is one-dimensional with one label per example (``len(y) == len(x)``);
      - every example has the shape of the first split's examples;
      - x is finite (no NaN or infinity) and within `pixel_range` (inclusive; None: any);
      - every label is in 0..classes-1, and every class occurs at least once.
    An empty split is skipped (a dataset without a test split is allowed).
    """
    # BEGIN SOLUTION check_splits: dtypes, shapes, finite values in range, labels and classes
    problems = []
    shape = None
    for split, (x, y) in splits.items():
        x, y = np.asarray(x), np.asarray(y)
        if len(x) == 0 and len(y) == 0:
            continue
        if x.dtype != np.float32:
            problems.append(f"{split}: x is {x.dtype}, expected float32")
        if y.dtype != np.int64:
            problems.append(f"{split}: y is {y.dtype}, expected int64")
        if y.ndim != 1 or len(y) != len(x):
            problems.append(
                f"{split}: y has shape {y.shape}, expected one label per example ({len(x)},)"
            )
        shape = x.shape[1:] if shape is None else shape
        if x.shape[1:] != shape:
            problems.append(f"{split}: examples are {x.shape[1:]}, expected {shape}")
        finite = np.isfinite(x)
        if not finite.all():
            problems.append(f"{split}: {int((~finite).sum())} values are NaN or infinite")
        if pixel_range is not None and finite.any():
            low, high = float(x[finite].min()), float(x[finite].max())
            if low < pixel_range[0] or high > pixel_range[1]:
                problems.append(
                    f"{split}: values span [{low:g}, {high:g}], expected within "
                    f"[{pixel_range[0]:g}, {pixel_range[1]:g}]"
                )
        labels = y.reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            problems.append(
                f"{split}: labels span {labels.min()}..{labels.max()}, expected 0..{classes - 1}"
            )
        valid = labels[(labels >= 0) & (labels < classes)].astype(np.int64)
        absent = np.flatnonzero(np.bincount(valid, minlength=classes)[:classes] == 0)
        if absent.size:
            problems.append(f"{split}: classes {absent.tolist()} never occur")
    return problems
    # END SOLUTION
    # BEGIN PROMPT
    # For each split (skip one whose x and y are both empty), append one line per broken
    # rule of the docstring, each starting "<split>: ". The examples' shape is x.shape[1:],
    # compared with the first non-empty split's. Count the values that are not finite
    # (np.isfinite); compare the range of the finite ones with pixel_range. For the
    # classes, np.bincount over the labels that are valid class indices, minlength=classes.
    # Return the list (empty when the data is sound).
    # END PROMPT


def check_dataset(data) -> dict:
    """Every check on a `dlcc.data.dataset.Dataset` loaded unscaled (``normalize=False``):
    {"name", "sizes", "problems", "overlap"}; the data is sound when `problems` is empty and
    every overlap count is 0."""
    splits = {split: (getattr(data, f"x_{split}"), getattr(data, f"y_{split}")) for split in SPLITS}
    problems = check_splits(splits, len(data.classes))
    overlap = split_overlap({split: x for split, (x, _) in splits.items()})
    return {
        "name": data.name,
        "sizes": {split: len(y) for split, (_, y) in splits.items()},
        "problems": problems,
        "overlap": overlap,
    }


def report_text(report: dict) -> str:
    """The report of `check_dataset` as the lines ``dlcc data check`` prints."""
    sizes = ", ".join(f"{split} {size:,}" for split, size in report["sizes"].items())
    lines = [f"{report['name']}: {sizes}"]
    lines += [f"  problem: {problem}" for problem in report["problems"]]
    overlap = report["overlap"]
    lines.append(
        f"  exact copies: {overlap['val_in_train']} validation and {overlap['test_in_train']} "
        f"test examples also in training; {overlap['within_train']} repeats within training"
    )
    sound = not report["problems"] and not any(overlap.values())
    lines.append("  sound" if sound else "  NOT sound: fix the data (or the loader) first")
    return "\n".join(lines)
