"""The real datasets in the shared folder (../shared/datasets or $DLCC_DATA_DIR), read-only.

Every test here skips, with the reason, when that folder is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from data_factories import MNIST_FILES, leftover_files

from dlcc.cli import main
from dlcc.data import dataset_status, fetch_dataset, load_dataset, verify_dataset

pytestmark = pytest.mark.shared_data


def test_real_mnist_loads_with_the_default_split(shared_dir):
    data = load_dataset("mnist", shared_dir)
    assert data.x_train.shape == (55_000, 1, 28, 28)
    assert data.x_val.shape == (5_000, 1, 28, 28)
    assert data.x_test.shape == (10_000, 1, 28, 28)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert np.bincount(data.y_test).tolist()[:3] == [980, 1135, 1032]  # the known test counts
    assert abs(float(data.mean[0]) - 0.1307) < 2e-3  # the well-known MNIST mean
    assert abs(float(data.x_train.mean())) < 1e-4


def test_real_cifar_subset_loads_whatever_batches_exist(shared_dir):
    data = load_dataset("cifar10", shared_dir)
    assert len(data.y_train) + len(data.y_val) == 4_000
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (3_600, 400, 1_000)
    assert data.x_test.shape == (1_000, 3, 32, 32)
    assert data.classes[:3] == ["airplane", "automobile", "bird"]
    assert dataset_status("cifar10", shared_dir).detail.startswith("subset")


def test_verify_mnist_passes_on_the_recompressed_shared_files(shared_dir, capsys):
    assert main(["data", "verify", "mnist", "--data-dir", str(shared_dir)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("mnist: verified")
    assert verify_dataset("fashion-mnist", shared_dir).fully_verified


def test_verify_cifar_subset_is_usable_and_says_it_is_not_the_official_set(shared_dir, capsys):
    assert main(["data", "verify", "cifar10", "--data-dir", str(shared_dir)]) == 0
    output = capsys.readouterr().out
    assert "structurally valid, 4,000 images" in output
    assert "not the full official set" in output
    assert "cifar10: usable, not fully verified" in output


def test_fetch_real_mnist_from_a_local_mirror_of_the_shared_files(
    shared_dir, tmp_path, http_server
):
    # Serve the shared (re-compressed) files as a mirror: the registry's content hashes accept
    # them, exactly as they accept the public mirror's gzip wrappers.
    for filename in MNIST_FILES:
        (http_server.root / filename).symlink_to(shared_dir / "mnist" / filename)
    data = tmp_path / "data"
    result = fetch_dataset("mnist", data, base_urls=[http_server.url])
    assert sorted(result.downloaded) == sorted(MNIST_FILES)
    assert leftover_files(data) == sorted(f"mnist/{name}" for name in MNIST_FILES)
