"""Provenance facts: the folder checksum follows content only, git state reads a real repo."""

import hashlib
import os
import shutil
import subprocess

import pytest

from dlcc.runs.provenance import (
    dataset_fingerprint,
    file_sha256,
    folder_sha256,
    git_state,
    hardware,
    installed_packages,
)


def test_file_sha256_is_hashlibs(tmp_path):
    path = tmp_path / "a.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_folder_sha256_follows_content_names_and_files_only(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "sub" / "b.txt").write_text("two")
    (tmp_path / ".hidden").write_text("ignored")
    digest, count = folder_sha256(tmp_path)
    assert count == 2
    os.utime(tmp_path / "a.txt", (1, 1))  # times do not count
    (tmp_path / ".hidden").write_text("still ignored")
    assert folder_sha256(tmp_path) == (digest, 2)
    (tmp_path / "a.txt").write_text("One")  # content does
    assert folder_sha256(tmp_path)[0] != digest
    (tmp_path / "a.txt").write_text("one")
    assert folder_sha256(tmp_path)[0] == digest
    (tmp_path / "a.txt").rename(tmp_path / "c.txt")  # and names do
    assert folder_sha256(tmp_path)[0] != digest


def test_dataset_fingerprint_of_a_folder_and_of_generated_data(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    record = dataset_fingerprint("mine", path=str(tmp_path))
    assert record["sha256"] == folder_sha256(tmp_path)[0] and record["files"] == 1
    generated = dataset_fingerprint("digits")
    assert generated["sha256"] is None and "generated" in generated["note"]
    missing = dataset_fingerprint("mine", path=str(tmp_path / "nowhere"))
    assert missing["sha256"] is None and "not found" in missing["note"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_state_of_a_real_repository(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None}

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("commit", "-qm", "one")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "f.txt").write_text("2")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}


def test_packages_and_hardware_describe_this_process():
    packages = installed_packages()
    import numpy

    assert packages["numpy"] == numpy.__version__
    machine = hardware()
    assert machine["cores"] >= 1 and isinstance(machine["gpus"], list)
