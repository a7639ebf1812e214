"""`fetch_dataset` and `verify_dataset` on tiny data served from 127.0.0.1 (never the internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import re
import shutil
import tarfile

import numpy as np
import pytest
from data_factories import (
    MNIST_FILES,
    leftover_files,
    tiny_mnist_spec,
    write_tiny_cifar,
    write_tiny_idx_dataset,
    write_tiny_mnist_csv,
)

from dlcc.data import fetch_dataset, load_dataset, registry, verify_dataset
from dlcc.data.idx import write_idx
from dlcc.data.verify import MISMATCH, MISSING, UNREADABLE, UNVERIFIED, VERIFIED
from dlcc.errors import DataError


@pytest.fixture
def served_tiny_mnist(http_server, monkeypatch):
    """Tiny mnist files on the local server; the registry entry knows their checksums."""
    checksums = write_tiny_idx_dataset(http_server.root / "mnist")
    monkeypatch.setitem(registry.DATASETS, "mnist", tiny_mnist_spec(checksums))
    return http_server.url + "mnist/"


def test_fetch_downloads_verifies_and_then_finds_it_present(tmp_path, served_tiny_mnist):
    data = tmp_path / "data"
    result = fetch_dataset("mnist", data, base_urls=[served_tiny_mnist])
    assert result.folder == data / "mnist"
    assert sorted(result.downloaded) == sorted(MNIST_FILES)
    assert leftover_files(data) == sorted(f"mnist/{name}" for name in MNIST_FILES)
    again = fetch_dataset("mnist", data, base_urls=["http://127.0.0.1:9/"])  # no network needed
    assert again.downloaded == [] and sorted(again.already_present) == sorted(MNIST_FILES)
    assert load_dataset("mnist", data).x_test.shape == (20, 1, 28, 28)


def test_fetch_completes_a_partial_folder(tmp_path, served_tiny_mnist):
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    shutil.copy(tmp_path / "served" / "mnist" / "train-labels-idx1-ubyte.gz", data / "mnist")
    result = fetch_dataset("mnist", data, base_urls=[served_tiny_mnist])
    assert result.already_present == ["train-labels-idx1-ubyte.gz"]
    assert len(result.downloaded) == 3


def test_fetch_refuses_to_keep_a_corrupt_file_and_says_what_to_do(tmp_path, served_tiny_mnist):
    data = tmp_path / "data"
    fetch_dataset("mnist", data, base_urls=[served_tiny_mnist])
    corrupt = data / "mnist" / "t10k-images-idx3-ubyte.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:100])
    with pytest.raises(DataError) as error:
        fetch_dataset("mnist", data, base_urls=[served_tiny_mnist])
    assert str(corrupt) in str(error.value)
    assert "delete it and run `dlcc data fetch mnist` again" in str(error.value)


def test_fetch_of_embedded_and_of_undownloadable_datasets(tmp_path):
    assert fetch_dataset("digits", tmp_path).folder is None
    with pytest.raises(
        DataError, match=r"mnist-csv has no public download: .*images_test\.csv.*mnist-csv/"
    ):
        fetch_dataset("mnist-csv", tmp_path)
    write_tiny_mnist_csv(tmp_path / "mnist-csv")
    assert fetch_dataset("mnist-csv", tmp_path).folder == tmp_path / "mnist-csv"


# ---------------------------------------------------------------- CIFAR-10 tarball


def _tiny_cifar_archive(tmp_path, *, extra_member: str | None = None) -> bytes:
    source = tmp_path / "archive-source"
    write_tiny_cifar(
        source / "cifar-10-batches-py", train_batches={"data_batch_1": 6, "data_batch_2": 4}
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        if extra_member:
            info = tarfile.TarInfo(extra_member)
            info.size = 4
            archive.addfile(info, io.BytesIO(b"evil"))
    return buffer.getvalue()


def _patch_cifar_registry(monkeypatch, archive_bytes: bytes) -> None:
    spec = registry.CIFAR10
    archive = dataclasses.replace(
        spec.archive, sha256=hashlib.sha256(archive_bytes).hexdigest(), md5=None
    )
    monkeypatch.setitem(registry.DATASETS, "cifar10", dataclasses.replace(spec, archive=archive))


def test_fetch_cifar_downloads_checks_and_unpacks_the_archive(tmp_path, http_server, monkeypatch):
    archive_bytes = _tiny_cifar_archive(tmp_path)
    (http_server.root / "cifar-10-python.tar.gz").write_bytes(archive_bytes)
    _patch_cifar_registry(monkeypatch, archive_bytes)
    data = tmp_path / "data"
    result = fetch_dataset("cifar10", data, base_urls=[http_server.url])
    assert result.folder == data / "cifar10" / "cifar-10-batches-py"
    assert leftover_files(data / "cifar10") == [
        "cifar-10-batches-py/batches.meta",
        "cifar-10-batches-py/data_batch_1",
        "cifar-10-batches-py/data_batch_2",
        "cifar-10-batches-py/test_batch",
    ]  # the tarball and the temporary folder are gone
    loaded = load_dataset("cifar10", data, val_size=0)
    assert loaded.x_train.shape == (10, 3, 32, 32)


def test_fetch_cifar_refuses_an_archive_that_escapes_its_folder(tmp_path, http_server, monkeypatch):
    archive_bytes = _tiny_cifar_archive(tmp_path, extra_member="../outside.txt")
    (http_server.root / "cifar-10-python.tar.gz").write_bytes(archive_bytes)
    _patch_cifar_registry(monkeypatch, archive_bytes)
    data = tmp_path / "data"
    with pytest.raises(DataError, match=r"contains '\.\./outside\.txt'.*not the official archive"):
        fetch_dataset("cifar10", data, base_urls=[http_server.url])
    assert leftover_files(data) == []
    assert not (tmp_path / "outside.txt").exists()


def test_fetch_cifar_with_a_wrong_archive_checksum_saves_nothing(tmp_path, http_server):
    (http_server.root / "cifar-10-python.tar.gz").write_bytes(_tiny_cifar_archive(tmp_path))
    data = tmp_path / "data"
    expected = "could not get a good copy of cifar-10-python.tar.gz"
    with pytest.raises(DataError, match=re.escape(expected)):
        fetch_dataset("cifar10", data, base_urls=[http_server.url])
    assert leftover_files(data) == []


# ---------------------------------------------------------------- verify


def test_verify_passes_on_intact_tiny_mnist(tiny_mnist):
    report = verify_dataset("mnist", tiny_mnist.data_dir)
    assert report.ok and report.fully_verified
    assert [check.status for check in report.files] == [VERIFIED] * 4
    assert report.summary == "60 train + 20 test images of 28x28"


def test_verify_reports_mismatch_truncation_and_missing_files(tiny_mnist):
    folder = tiny_mnist.folder
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-20])
    labels = folder / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.full(60, 3, dtype=np.uint8))  # well-formed, but other data
    report = verify_dataset("mnist", tiny_mnist.data_dir)
    statuses = {check.filename: check.status for check in report.files}
    assert statuses == {
        "train-images-idx3-ubyte.gz": UNREADABLE,
        "train-labels-idx1-ubyte.gz": MISMATCH,
        "t10k-images-idx3-ubyte.gz": VERIFIED,
        "t10k-labels-idx1-ubyte.gz": MISSING,
    }
    assert not report.ok


def test_verify_cifar_subset_is_usable_but_honestly_not_verified(tmp_path):
    write_tiny_cifar(
        tmp_path / "cifar10-subset" / "cifar-10-batches-py", train_batches={"data_batch_1": 7}
    )
    report = verify_dataset("cifar10", tmp_path)
    assert report.ok and not report.fully_verified
    by_name = {check.filename: check for check in report.files}
    assert by_name["data_batch_1"].status == UNVERIFIED
    assert "structurally valid, 7 images" in by_name["data_batch_1"].message
    assert "a subset" in by_name["data_batch_1"].message
    assert by_name["data_batch_3"].status == "absent"
    assert "not the full official set" in " ".join(report.notes)
    assert "7 train images in 1 of 5 batches + 10 test images" in report.summary


def test_verify_cifar_flags_a_malicious_batch_as_unreadable(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_tiny_cifar(folder, train_batches={"data_batch_1": 3})
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": print}))
    report = verify_dataset("cifar10", tmp_path)
    assert not report.ok
    check = next(check for check in report.files if check.filename == "data_batch_1")
    assert check.status == UNREADABLE and "builtins.print" in check.message


def test_verify_mnist_csv_checks_structure_and_says_no_checksum_exists(tmp_path):
    write_tiny_mnist_csv(tmp_path / "mnist-csv", train_count=12, test_count=3)
    report = verify_dataset("mnist-csv", tmp_path)
    assert report.ok and not report.fully_verified
    assert {check.status for check in report.files} == {UNVERIFIED}
    assert report.summary == "12 train + 3 test images of 28x28"
    assert "no published checksums" in report.notes[0]


def test_verify_digits():
    report = verify_dataset("digits")
    assert report.ok and report.summary.startswith("1,797 images")
