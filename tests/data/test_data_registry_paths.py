"""The registry's entries, and where data is looked for (--data-dir > env > ~/.cache/dlcc)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from data_factories import write_tiny_cifar, write_tiny_idx_dataset

from dlcc.data import DATASETS, dataset_names, dataset_status, get_spec, resolve_data_dir
from dlcc.data.paths import find_dataset_folder, locate_file
from dlcc.errors import DataError

HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
HEX_MD5 = re.compile(r"^[0-9a-f]{32}$")


def test_registry_holds_the_seven_datasets_with_the_embedded_default_first():
    assert dataset_names() == [
        "digits",
        "mnist",
        "fashion-mnist",
        "cifar10",
        "mnist-csv",
        "tinyshakespeare",
        "isbi2012_em",
    ]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_datasets_record_a_content_sha256_and_urls_for_each_file(name):
    spec = get_spec(name)
    assert len(spec.files) == 4
    for dataset_file in spec.files:
        assert HEX_SHA256.match(dataset_file.sha256)
        assert dataset_file.checksum_of_content  # the hash is of the decompressed IDX
        assert dataset_file.urls
        assert all(url.endswith("/" + dataset_file.filename) for url in dataset_file.urls)


def test_cifar10_records_the_archive_checksums_and_only_official_md5s_for_batches():
    spec = get_spec("cifar10")
    assert spec.archive.md5 == "c58f30108f718f92721af3b95e74349a"
    assert HEX_SHA256.match(spec.archive.sha256)
    assert spec.archive.urls == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)
    for dataset_file in spec.files:
        assert dataset_file.sha256 is None  # not published: never invented
        assert HEX_MD5.match(dataset_file.md5)


def test_mnist_csv_has_no_download_and_digits_no_files():
    assert not get_spec("mnist-csv").downloadable
    assert all(not file.urls for file in get_spec("mnist-csv").files)
    assert get_spec("digits").files == ()


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(DataError, match="mnist, fashion-mnist, cifar10"):
        get_spec("imagenet")


def test_every_image_spec_declares_its_image_shape_and_its_classes():
    for spec in DATASETS.values():
        if spec.file_format == "text":
            assert spec.image_shape == () and spec.classes == ()
            continue
        assert len(spec.image_shape) == 3
        # ten for the classification sets; the segmentation set's mask classes
        assert len(spec.classes) == (2 if spec.file_format == "image-masks" else 10)


def test_the_text_corpus_records_its_sha256_and_the_char_rnn_url():
    spec = get_spec("tinyshakespeare")
    (text_file,) = spec.files
    assert text_file.filename == "input.txt" and HEX_SHA256.match(text_file.sha256)
    assert not text_file.checksum_of_content  # the bytes as published
    assert text_file.urls[0].endswith("karpathy/char-rnn/master/data/tinyshakespeare/input.txt")
    assert spec.downloadable


# ---------------------------------------------------------------- data directory precedence


def test_data_dir_argument_wins_over_environment_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCC_DATA_DIR", str(tmp_path / "from-env"))
    assert resolve_data_dir(tmp_path / "from-arg") == tmp_path / "from-arg"
    assert resolve_data_dir(str(tmp_path / "from-arg")) == tmp_path / "from-arg"


def test_environment_wins_over_default(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCC_DATA_DIR", str(tmp_path / "from-env"))
    assert resolve_data_dir(None) == tmp_path / "from-env"


def test_default_is_the_cache_folder_in_home(isolated_home):
    assert resolve_data_dir(None) == isolated_home / ".cache" / "dlcc"


def test_empty_environment_variable_counts_as_unset(isolated_home, monkeypatch):
    # The Makefile exports DLCC_DATA_DIR empty when the shared folder is absent.
    monkeypatch.setenv("DLCC_DATA_DIR", "")
    assert resolve_data_dir(None) == isolated_home / ".cache" / "dlcc"


def test_tilde_is_expanded(isolated_home):
    assert resolve_data_dir("~/datasets") == isolated_home / "datasets"


def test_dataset_status_follows_the_same_precedence(tmp_path, monkeypatch):
    env_dir, arg_dir = tmp_path / "env", tmp_path / "arg"
    write_tiny_cifar(env_dir / "cifar-10-batches-py", train_batches={"data_batch_1": 4})
    monkeypatch.setenv("DLCC_DATA_DIR", str(env_dir))
    assert dataset_status("cifar10").present
    assert not dataset_status("cifar10", arg_dir).present
    assert dataset_status("cifar10", arg_dir).location == arg_dir / "cifar10/cifar-10-batches-py"


# ---------------------------------------------------------------- publisher layouts


@pytest.mark.parametrize(
    "relative",
    [
        "cifar10/cifar-10-batches-py",
        "cifar10-subset/cifar-10-batches-py",
        "cifar-10-batches-py",
    ],
)
def test_cifar_is_found_in_each_accepted_layout(tmp_path, relative):
    write_tiny_cifar(tmp_path / relative, train_batches={"data_batch_3": 4})
    assert find_dataset_folder(get_spec("cifar10"), tmp_path) == tmp_path / relative


def test_cifar_without_any_training_batch_is_not_present(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    write_tiny_cifar(folder, train_batches={})
    status = dataset_status("cifar10", tmp_path)
    assert not status.present
    assert "at least one of data_batch_1" in status.detail


def test_an_unpacked_idx_file_is_accepted_under_its_name_without_gz(tmp_path):
    write_tiny_idx_dataset(tmp_path / "mnist")
    packed = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    unpacked = packed.with_suffix("")
    unpacked.write_bytes(gzip.decompress(packed.read_bytes()))
    packed.unlink()
    spec = get_spec("mnist")
    labels_file = next(f for f in spec.files if f.filename == packed.name)
    assert locate_file(tmp_path / "mnist", labels_file) == unpacked
    assert find_dataset_folder(spec, tmp_path) == tmp_path / "mnist"


def test_partial_dataset_is_reported_missing_with_the_missing_filenames(tmp_path):
    write_tiny_idx_dataset(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    status = dataset_status("mnist", tmp_path)
    assert not status.present
    assert status.missing == ("t10k-images-idx3-ubyte.gz",)
    assert status.location == Path(tmp_path / "mnist")
