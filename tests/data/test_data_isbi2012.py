"""The isbi2012_em registry entry: tiny self-made copies here, the shared folder when present."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlcc.data import get_spec, load_dataset, registry, verify_dataset
from dlcc.data.status import dataset_status
from dlcc.errors import DataError


def test_the_entry_has_no_download_and_checksums_for_every_training_file():
    spec = get_spec("isbi2012_em")
    assert spec.file_format == "image-masks" and not spec.downloadable
    assert spec.classes == ("membrane", "cell") and spec.default_val_size == 5
    names = [file.filename for file in spec.files]
    assert len(names) == 50 and all(len(file.sha256 or "") == 64 for file in spec.files)
    assert {"train/image/0.png", "train/label/24.png"} <= set(names)
    assert "imagej.net/events/isbi-2012-segmentation-challenge" in spec.manual_download_hint


@pytest.fixture
def tiny_isbi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir with isbi2012-em/train/{image,label}: 7 pairs of 8x8, checksums patched."""
    folder = tmp_path / "data" / "isbi2012-em" / "train"
    rng = np.random.default_rng(0)
    files = []
    for kind in ("image", "label"):
        (folder / kind).mkdir(parents=True)
        for index in range(7):
            values = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            pixels = values if kind == "image" else (values > 100).astype(np.uint8) * 255
            path = folder / kind / f"{index}.png"
            Image.fromarray(pixels).save(path)
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            files.append(registry.DatasetFile(f"train/{kind}/{index}.png", sha256=sha))
    spec = dataclasses.replace(registry.ISBI2012_EM, files=tuple(files))
    monkeypatch.setitem(registry.DATASETS, "isbi2012_em", spec)
    return tmp_path / "data"


def test_a_tiny_copy_loads_with_five_for_validation_and_no_test_split(tiny_isbi):
    data = load_dataset("isbi2012_em", tiny_isbi, seed=1)
    assert data.name == "isbi2012_em" and data.classes == ["membrane", "cell"]
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (2, 5, 0)
    assert data.y_test.shape == (0, 1, 8, 8) and set(np.unique(data.y_val)) <= {0.0, 1.0}
    again = load_dataset("isbi2012_em", tiny_isbi, seed=1)
    np.testing.assert_array_equal(data.x_val, again.x_val)
    assert dataset_status("isbi2012_em", tiny_isbi).present


def test_verify_checks_every_file_and_catches_a_changed_one(tiny_isbi):
    report = verify_dataset("isbi2012_em", tiny_isbi)
    assert report.fully_verified and len(report.files) == 14
    assert "7 image/mask pairs" in report.summary
    label = tiny_isbi / "isbi2012-em" / "train" / "label" / "3.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(label)
    report = verify_dataset("isbi2012_em", tiny_isbi)
    assert not report.ok
    assert [check.filename for check in report.files if check.status == "MISMATCH"] == [
        "train/label/3.png"
    ]


def test_a_missing_copy_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"no public download.*isbi-2012.*train/image/N\.png"):
        load_dataset("isbi2012_em", tmp_path)


def test_the_shared_copy_verifies_and_loads(shared_dir):
    if not (shared_dir / "isbi2012-em" / "train").is_dir():
        pytest.skip("the shared dataset folder has no isbi2012-em/")
    assert verify_dataset("isbi2012_em", shared_dir).fully_verified
    data = load_dataset("isbi2012_em", shared_dir)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (20, 5, 0)
    assert data.x_train.shape[1:] == (1, 512, 512) and data.y_train.shape[1:] == (1, 512, 512)
