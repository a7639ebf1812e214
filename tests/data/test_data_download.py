"""Checksums, atomic writes and downloads, against a local server only (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import io

import pytest
from data_factories import leftover_files

from dlcc.atomic import atomic_write
from dlcc.data.download import (
    checksum_problem,
    download_file,
    file_digests,
    sha256_file,
)
from dlcc.data.fetch import fetch_dataset
from dlcc.data.registry import DatasetFile
from dlcc.errors import DataError

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB: several read chunks
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
REFUSED_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens, connection refused


def payload_file(**overrides) -> DatasetFile:
    fields = {"filename": "payload.bin", "sha256": PAYLOAD_SHA256, "md5": PAYLOAD_MD5}
    fields.update(overrides)
    return DatasetFile(**fields)


# ---------------------------------------------------------------- checksums


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD)
    assert sha256_file(path) == PAYLOAD_SHA256
    assert file_digests(path, ("sha256", "md5")) == {"sha256": PAYLOAD_SHA256, "md5": PAYLOAD_MD5}


def test_content_checksum_ignores_the_gzip_wrapper(tmp_path):
    packed = tmp_path / "payload.gz"
    packed.write_bytes(gzip.compress(PAYLOAD, mtime=1))
    assert sha256_file(packed) != PAYLOAD_SHA256
    assert sha256_file(packed, decompress_gzip=True) == PAYLOAD_SHA256
    plain = tmp_path / "payload"
    plain.write_bytes(PAYLOAD)  # not gzip: hashed as it is, same content hash
    assert sha256_file(plain, decompress_gzip=True) == PAYLOAD_SHA256


def test_checksum_mismatch_names_the_file_and_what_to_do(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD[:-1] + b"X")
    problem = checksum_problem(path, payload_file(), remedy="delete it and run fetch")
    assert str(path) in problem
    assert f"expected {PAYLOAD_SHA256}" in problem
    assert problem.endswith("delete it and run fetch")
    path.write_bytes(PAYLOAD)
    assert checksum_problem(path, payload_file()) is None


def test_truncated_gzip_is_a_data_error_when_hashing(tmp_path):
    path = tmp_path / "payload.gz"
    path.write_bytes(gzip.compress(PAYLOAD)[:1000])
    with pytest.raises(DataError, match=r"payload\.gz is truncated or corrupt"):
        sha256_file(path, decompress_gzip=True)


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    destination = tmp_path / "out" / "file.bin"
    with pytest.raises(RuntimeError), atomic_write(destination) as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert leftover_files(tmp_path / "out") == []


def test_atomic_write_leaves_nothing_when_verification_refuses(tmp_path):
    def refuse(path):
        raise DataError("bad")

    with pytest.raises(DataError), atomic_write(tmp_path / "file.bin", verify=refuse) as handle:
        handle.write(b"data")
    assert leftover_files(tmp_path) == []


def test_atomic_write_replaces_only_on_success(tmp_path):
    destination = tmp_path / "file.bin"
    destination.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(destination) as handle:
        handle.write(b"new")
        raise KeyboardInterrupt
    assert destination.read_bytes() == b"old"
    with atomic_write(destination) as handle:
        handle.write(b"new")
    assert destination.read_bytes() == b"new"
    assert leftover_files(tmp_path) == ["file.bin"]


# ---------------------------------------------------------------- downloads


def test_download_from_a_local_http_server(tmp_path, http_server):
    (http_server.root / "payload.bin").write_bytes(PAYLOAD)
    destination = tmp_path / "data" / "payload.bin"
    download_file(payload_file(), destination, urls=[http_server.url + "payload.bin"])
    assert destination.read_bytes() == PAYLOAD
    assert leftover_files(tmp_path / "data") == ["payload.bin"]


def test_download_from_a_file_url(tmp_path):
    source = tmp_path / "source" / "payload.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    destination = tmp_path / "data" / "payload.bin"
    download_file(payload_file(), destination, urls=[source.as_uri()], progress=False)
    assert destination.read_bytes() == PAYLOAD


def test_wrong_checksum_leaves_no_file_and_no_temporary(tmp_path, http_server):
    (http_server.root / "payload.bin").write_bytes(PAYLOAD[::-1])
    data = tmp_path / "data"
    with pytest.raises(DataError) as error:
        download_file(payload_file(), data / "payload.bin", urls=[http_server.url + "payload.bin"])
    message = str(error.value)
    assert "could not get a good copy of payload.bin; nothing was saved" in message
    assert f"expected {PAYLOAD_SHA256}" in message
    assert leftover_files(data) == []


def test_interrupted_transfer_leaves_no_file_and_no_temporary(tmp_path, http_server):
    (http_server.root / "payload.bin").write_bytes(PAYLOAD)
    data = tmp_path / "data"
    with pytest.raises(DataError, match=r"connection closed after [\d,]+ of 1,280,000 bytes"):
        download_file(
            payload_file(), data / "payload.bin", urls=[http_server.url + "truncated/payload.bin"]
        )
    assert leftover_files(data) == []


def test_a_failing_mirror_falls_through_to_the_next(tmp_path, http_server):
    (http_server.root / "payload.bin").write_bytes(PAYLOAD)
    destination = tmp_path / "payload.bin"
    urls = [http_server.url + "missing.bin", REFUSED_URL + "x", http_server.url + "payload.bin"]
    download_file(payload_file(), destination, urls=urls)
    assert destination.read_bytes() == PAYLOAD


def test_http_404_is_reported_with_its_status(tmp_path, http_server):
    with pytest.raises(DataError, match="HTTP 404"):
        download_file(payload_file(), tmp_path / "x.bin", urls=[http_server.url + "absent.bin"])


class _InterruptedResponse:
    """Sends one chunk, then the user presses Ctrl-C."""

    def __init__(self):
        self.headers = {"Content-Length": str(len(PAYLOAD))}
        self.stream = io.BytesIO(PAYLOAD)
        self.calls = 0

    def read(self, size=-1):
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt
        return self.stream.read(size)

    def close(self):
        pass


def test_ctrl_c_during_a_download_leaves_nothing(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        download_file(
            payload_file(),
            data / "payload.bin",
            urls=["http://example.invalid/payload.bin"],
            opener=lambda url, timeout: _InterruptedResponse(),
        )
    assert leftover_files(data) == []


def test_stale_temporaries_of_a_killed_process_are_removed(tmp_path, http_server):
    (http_server.root / "payload.bin").write_bytes(PAYLOAD)
    data = tmp_path / "data"
    data.mkdir()
    (data / ".payload.bin.abc123.part").write_bytes(b"half of an old download")
    download_file(payload_file(), data / "payload.bin", urls=[http_server.url + "payload.bin"])
    assert leftover_files(data) == ["payload.bin"]


def test_no_network_says_which_files_to_put_in_which_folder(tmp_path):
    data = tmp_path / "data"
    with pytest.raises(DataError) as error:
        fetch_dataset("mnist", data, base_urls=[REFUSED_URL])
    message = str(error.value)
    assert "could not download train-images-idx3-ubyte.gz (no network?)" in message
    assert REFUSED_URL + "train-images-idx3-ubyte.gz" in message
    assert f"in {data / 'mnist'}/" in message
    for filename in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert filename in message
    assert "\n" not in message
    assert leftover_files(data) == [] and not (data / "mnist").exists()


def test_no_network_for_cifar_says_where_to_unpack_the_archive(tmp_path):
    with pytest.raises(DataError) as error:
        fetch_dataset("cifar10", tmp_path, base_urls=[REFUSED_URL])
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message
    assert f"{tmp_path / 'cifar10' / 'cifar-10-batches-py'}/" in message
    assert "data_batch_1" in message and "test_batch" in message
