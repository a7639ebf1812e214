"""`verify_dataset`: check a dataset's files against what the registry knows, honestly.

What can be checked differs by dataset, and the report says which check was made:
- mnist, fashion-mnist: sha256 of each file's decompressed content, against the registry.
- cifar10: md5 of each file against the official files' md5 (torchvision's list), plus a
  structural check (safe unpickling, expected dict, shapes). A file that loads but differs
  from the official md5 (the shared folder's 4,000-image subset, a re-saved copy) is usable,
  and the report says it is not the official file rather than calling it verified.
- mnist-csv: no published checksums exist; structure only.
- digits: part of the installed scikit-learn; structure only.
- tinyshakespeare: sha256 of the text file's bytes, against the registry.
- isbi2012_em: sha256 of each training image's and mask's bytes, against the registry (the
  unlabelled test images are not used, so not checked).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dlcc.data.cifar import read_batch, read_class_names
from dlcc.data.csv_format import load_csv_split
from dlcc.data.digits import DIGITS_COUNT, load_digits_arrays
from dlcc.data.download import checksum_problem
from dlcc.data.idx import read_idx_shape
from dlcc.data.paths import fetch_folder, find_dataset_folder, locate_file, resolve_data_dir
from dlcc.data.registry import (
    CIFAR10_IMAGES_PER_OFFICIAL_BATCH,
    CIFAR10_TRAIN_BATCHES,
    DatasetSpec,
    get_spec,
)
from dlcc.data.status import damaged_file_remedy
from dlcc.errors import DataError

# FileCheck.status values; only the first three make a dataset fail verification.
MISSING = "missing"
MISMATCH = "MISMATCH"
UNREADABLE = "unreadable"
VERIFIED = "ok"
UNVERIFIED = "unverified"  # readable and well-formed, but no checksum confirms it
ABSENT_OPTIONAL = "absent"
FAILING_STATUSES = (MISSING, MISMATCH, UNREADABLE)


@dataclass(frozen=True)
class FileCheck:
    """The verdict on one file: `status` is one of the module's status constants."""

    filename: str
    status: str
    message: str
    path: Path | None = None


@dataclass
class VerifyReport:
    """Everything `verify_dataset` found out about one dataset.

    Attributes:
        name: registry name.
        folder: where the files were looked for.
        files: one check per registry file.
        summary: one line about the whole dataset (image counts when readable).
        notes: caveats a person should read (e.g. "not the full official set").
    """

    name: str
    folder: Path | None
    files: list[FileCheck] = field(default_factory=list)
    summary: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the data is present and usable and no known checksum contradicts it."""
        return not any(check.status in FAILING_STATUSES for check in self.files)

    @property
    def fully_verified(self) -> bool:
        """True when every present file matched a published checksum."""
        return self.ok and all(check.status in (VERIFIED, ABSENT_OPTIONAL) for check in self.files)


def verify_dataset(name: str, data_dir: str | os.PathLike[str] | None = None) -> VerifyReport:
    """Check every file of dataset `name`; never raises for a bad file, reports it instead.

    Raises:
        DataError: only for an unknown dataset name.
    """
    spec = get_spec(name)
    if spec.file_format == "embedded":
        return _verify_digits(spec)
    data_root = resolve_data_dir(data_dir)
    folder = find_dataset_folder(spec, data_root) or fetch_folder(spec, data_root)
    report = VerifyReport(name=spec.name, folder=folder)
    if spec.file_format == "idx":
        _verify_idx(spec, folder, report)
    elif spec.file_format == "cifar-pickle":
        _verify_cifar(spec, folder, report)
    elif spec.file_format == "csv":
        _verify_csv(spec, folder, report)
    elif spec.file_format in ("text", "image-masks"):
        _verify_text(spec, folder, report)
    return report


def _verify_digits(spec: DatasetSpec) -> VerifyReport:
    report = VerifyReport(name=spec.name, folder=None)
    try:
        images, labels = load_digits_arrays()
    except DataError as error:
        report.files.append(FileCheck("digits.csv.gz (scikit-learn)", UNREADABLE, str(error)))
        return report
    in_range = images.min() >= 0 and images.max() <= 16 and set(labels.tolist()) == set(range(10))
    status = UNVERIFIED if in_range and len(images) == DIGITS_COUNT else UNREADABLE
    report.files.append(
        FileCheck(
            "digits.csv.gz (scikit-learn)",
            status,
            f"{len(images):,} images of 8x8, values 0..16, 10 classes"
            if status == UNVERIFIED
            else "unexpected content: reinstall scikit-learn",
        )
    )
    report.summary = f"{len(images):,} images shipped with scikit-learn (no download)"
    report.notes.append("no checksum recorded: the data is part of the installed scikit-learn")
    return report


def _verify_idx(spec: DatasetSpec, folder: Path, report: VerifyReport) -> None:
    remedy = damaged_file_remedy(spec)
    counts: dict[str, int] = {}
    for dataset_file in spec.files:
        path = locate_file(folder, dataset_file)
        if path is None:
            report.files.append(FileCheck(dataset_file.filename, MISSING, f"not in {folder}/"))
            continue
        try:
            problem = checksum_problem(path, dataset_file, remedy=remedy)
            shape = read_idx_shape(path, remedy=remedy)
        except DataError as error:
            report.files.append(FileCheck(dataset_file.filename, UNREADABLE, str(error), path))
            continue
        if problem:
            report.files.append(FileCheck(dataset_file.filename, MISMATCH, problem, path))
            continue
        counts[dataset_file.filename] = shape[0]
        what = "decompressed content" if dataset_file.checksum_of_content else "bytes"
        report.files.append(
            FileCheck(
                dataset_file.filename,
                VERIFIED,
                f"sha256 of its {what} matches the registry ({shape[0]:,} items)",
                path,
            )
        )
    train = counts.get("train-images-idx3-ubyte.gz")
    test = counts.get("t10k-images-idx3-ubyte.gz")
    if report.ok and train is not None and test is not None:
        _, height, width = spec.image_shape
        report.summary = f"{train:,} train + {test:,} test images of {height}x{width}"
        if any(
            path is not None and path.suffix == ".gz" for path in (c.path for c in report.files)
        ):
            report.notes.append(
                "the checksums cover the decompressed IDX content, so any gzip wrapper of the "
                "same data (a mirror's, or a re-compressed copy) verifies"
            )


def _verify_text(spec: DatasetSpec, folder: Path, report: VerifyReport) -> None:
    """Files checked by the sha256 of their bytes: a text corpus, or image/mask PNGs."""
    remedy = damaged_file_remedy(spec)
    for dataset_file in spec.files:
        path = locate_file(folder, dataset_file)
        if path is None:
            report.files.append(FileCheck(dataset_file.filename, MISSING, f"not in {folder}/"))
            continue
        try:
            problem = checksum_problem(path, dataset_file, remedy=remedy)
        except DataError as error:
            report.files.append(FileCheck(dataset_file.filename, UNREADABLE, str(error), path))
            continue
        if problem:
            report.files.append(FileCheck(dataset_file.filename, MISMATCH, problem, path))
            continue
        size = path.stat().st_size
        report.files.append(
            FileCheck(
                dataset_file.filename,
                VERIFIED,
                f"sha256 of its bytes matches the registry ({size:,} bytes)",
                path,
            )
        )
    if not report.ok:
        return
    if spec.file_format == "text":
        report.summary = "one text file; the last 10% of it is the validation text"
    else:
        pairs = len(spec.files) // 2
        channels, height, width = spec.image_shape
        report.summary = (
            f"{pairs} image/mask pairs of {channels}x{height}x{width}; "
            f"{spec.default_val_size} held out for validation, no test split"
        )


def _verify_cifar(spec: DatasetSpec, folder: Path, report: VerifyReport) -> None:
    remedy = damaged_file_remedy(spec)
    train_images = test_images = 0
    batches_present: list[str] = []
    not_official: list[str] = []
    for dataset_file in spec.files:
        path = locate_file(folder, dataset_file)
        if path is None:
            if dataset_file.required:
                report.files.append(FileCheck(dataset_file.filename, MISSING, f"not in {folder}/"))
            else:
                report.files.append(
                    FileCheck(dataset_file.filename, ABSENT_OPTIONAL, "not present (optional)")
                )
            continue
        try:
            if dataset_file.filename == "batches.meta":
                read_class_names(path, remedy=remedy)
                content = "readable, 10 class names"
                image_count = None
            else:
                images, _ = read_batch(path, remedy=remedy)
                image_count = len(images)
                content = f"structurally valid, {image_count:,} images"
            problem = checksum_problem(path, dataset_file, remedy=remedy)
        except DataError as error:
            report.files.append(FileCheck(dataset_file.filename, UNREADABLE, str(error), path))
            continue
        if dataset_file.filename in CIFAR10_TRAIN_BATCHES:
            batches_present.append(dataset_file.filename)
            train_images += image_count or 0
        elif dataset_file.filename == "test_batch":
            test_images = image_count or 0
        if problem is None:
            report.files.append(
                FileCheck(
                    dataset_file.filename,
                    VERIFIED,
                    f"{content}; md5 matches the official file",
                    path,
                )
            )
            continue
        not_official.append(dataset_file.filename)
        partial = image_count is not None and image_count < CIFAR10_IMAGES_PER_OFFICIAL_BATCH
        why = (
            f"a subset (an official batch has {CIFAR10_IMAGES_PER_OFFICIAL_BATCH:,})"
            if partial
            else "a re-saved or modified copy"
        )
        report.files.append(
            FileCheck(
                dataset_file.filename,
                UNVERIFIED,
                f"{content}; md5 differs from the official file's: {why}",
                path,
            )
        )
    if not report.ok:
        return
    report.summary = (
        f"{train_images:,} train images in {len(batches_present)} of "
        f"{len(CIFAR10_TRAIN_BATCHES)} batches + {test_images:,} test images of 3x32x32"
    )
    full_size = (
        len(batches_present) == len(CIFAR10_TRAIN_BATCHES)
        and train_images == len(CIFAR10_TRAIN_BATCHES) * CIFAR10_IMAGES_PER_OFFICIAL_BATCH
        and test_images == CIFAR10_IMAGES_PER_OFFICIAL_BATCH
    )
    if not full_size:
        report.notes.append(
            "usable, but not the full official set (50,000 train + 10,000 test images)"
        )
    if not_official:
        report.notes.append(
            f"not verified as the official files: {', '.join(not_official)} differ from the "
            "official md5s (no sha256 of the extracted CIFAR-10 files is published)"
        )


def _verify_csv(spec: DatasetSpec, folder: Path, report: VerifyReport) -> None:
    remedy = damaged_file_remedy(spec)
    for dataset_file in spec.files:
        if locate_file(folder, dataset_file) is None:
            report.files.append(
                FileCheck(
                    dataset_file.filename,
                    MISSING,
                    f"not in {folder}/ (no public download: copy the course's file there)",
                )
            )
    if not report.ok:
        return
    counts = {}
    for split in ("train", "test"):
        images_path = folder / f"images_{split}.csv"
        labels_path = folder / f"labels_{split}.csv"
        try:
            images, _ = load_csv_split(images_path, labels_path, remedy=remedy)
        except DataError as error:
            for path in (images_path, labels_path):
                report.files.append(FileCheck(path.name, UNREADABLE, str(error), path))
            continue
        counts[split] = len(images)
        for path in (images_path, labels_path):
            report.files.append(
                FileCheck(path.name, UNVERIFIED, f"well-formed, {len(images):,} rows", path)
            )
    if report.ok:
        report.summary = f"{counts['train']:,} train + {counts['test']:,} test images of 28x28"
        report.notes.append("no published checksums exist for the course's CSV files")
