"""A class's submissions folder: finding each student's submission, fingerprinting it, and
unpacking it safely for grading.

``DIR`` holds one entry per student: a folder or a ``.zip``; the student id is the entry's
name without ``.zip``. Hidden entries (``.name``) and other files are ignored.

Nothing a submission holds is trusted. Before grading, a submission is copied (a folder) or
extracted (a zip) into a fresh temporary folder, keeping only regular files, within caps on
the number of files and the bytes written:

- a zip member with an absolute path, a drive letter, a ``..`` part or a symlink mode, or an
  unreadable, encrypted or corrupt zip, rejects the whole submission (`SubmissionRejected`);
- in a folder, symlinks, FIFOs, devices, caches and virtual environments are skipped (a FIFO
  would block the reader), so the grader reads only what the copy holds.

This module reads files and writes only into the temporary folder; it imports nothing from
the submission.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dlcc.course.errors import CourseError

MAX_SUBMISSION_BYTES = 64 * 1024 * 1024  # unpacked, in all
MAX_SUBMISSION_FILES = 5000
SKIPPED_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", "site-packages"}
CHUNK = 1024 * 1024
DRIVE = re.compile(r"^[A-Za-z]:")


class SubmissionRejected(Exception):
    """A submission the grader refuses to unpack; the message is its grades.csv reason."""


@dataclass(frozen=True)
class Submission:
    """One student's entry in the submissions folder."""

    student: str
    path: Path
    duplicate: Path | None = None  # a second entry with the same student id (folder and zip)

    @property
    def is_zip(self) -> bool:
        return self.path.suffix.lower() == ".zip" and not self.path.is_dir()


def find_submissions(folder: Path, exclude: Path | None = None) -> list[Submission]:
    """The submissions in `folder`, sorted by student id. `exclude` (the output folder, if it
    lies inside) is left out. Raises `CourseError` for a missing folder or none found."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CourseError(f"--submissions {folder}: no such folder")
    found: dict[str, list[Path]] = {}
    excluded = exclude.resolve() if exclude is not None else None
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if excluded is not None and entry.resolve() == excluded:
            continue
        if entry.is_dir():
            student = entry.name
        elif entry.is_file() and entry.suffix.lower() == ".zip":
            student = entry.name[: -len(".zip")]
        else:
            continue
        if student:
            found.setdefault(student, []).append(entry)
    if not found:
        raise CourseError(
            f"--submissions {folder}: no submissions (expected one folder or .zip per student)"
        )
    return [
        Submission(student, paths[0], paths[1] if len(paths) > 1 else None)
        for student, paths in sorted(found.items())
    ]


def fingerprint_submission(submission: Submission) -> str:
    """sha256 of what the submission holds: a zip's bytes, or a folder's file paths and bytes
    (the files `copy_folder` would keep)."""
    digest = hashlib.sha256()
    if submission.is_zip:
        digest.update(b"zip\0")
        _hash_file(digest, submission.path)
    else:
        digest.update(b"folder\0")
        for relative, path in _regular_files(submission.path):
            digest.update(relative.encode("utf-8", "surrogateescape") + b"\0")
            _hash_file(digest, path)
    if submission.duplicate is not None:
        digest.update(b"duplicate\0" + submission.duplicate.name.encode("utf-8", "replace"))
    return digest.hexdigest()


def hash_tree(digest, folder: Path) -> None:
    """Feed every regular file under `folder` (paths and bytes, sorted) into `digest`."""
    for relative, path in _regular_files(folder):
        digest.update(relative.encode("utf-8", "surrogateescape") + b"\0")
        _hash_file(digest, path)


@contextmanager
def unpacked(submission: Submission) -> Iterator[Path]:
    """A temporary folder holding a safe copy of the submission; removed on leaving."""
    if submission.duplicate is not None:
        raise SubmissionRejected(
            f"both {submission.path.name} and {submission.duplicate.name}: keep one"
        )
    work = Path(tempfile.mkdtemp(prefix="dlcc-class-"))
    try:
        target = work / submission.student
        target.mkdir()
        if submission.is_zip:
            extract_zip(submission.path, target)
        else:
            copy_folder(submission.path, target)
        yield target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def extract_zip(path: Path, destination: Path) -> None:
    """Extract `path` into `destination` within the caps; `SubmissionRejected` on anything
    unsafe or broken. Every member's name is checked before anything is written."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise SubmissionRejected(f"{path.name} is not a readable zip ({error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > MAX_SUBMISSION_FILES:
            raise SubmissionRejected(
                f"{path.name} has {len(members)} members (limit {MAX_SUBMISSION_FILES})"
            )
        planned, seen = [], set()
        for member in members:
            relative = _safe_member_name(member, path.name)
            if relative is None:
                continue
            if not member.is_dir() and relative in seen:
                raise SubmissionRejected(f"{path.name} holds {relative} twice")
            seen.add(relative)
            planned.append((member, relative))
        written = 0
        for member, relative in planned:
            target = destination.joinpath(*relative.parts)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as source, open(target, "xb") as sink:
                    while chunk := source.read(CHUNK):
                        written += len(chunk)
                        if written > MAX_SUBMISSION_BYTES:
                            raise SubmissionRejected(
                                f"{path.name} unpacks to over "
                                f"{MAX_SUBMISSION_BYTES // 1024 // 1024} MB"
                            )
                        sink.write(chunk)
            except SubmissionRejected:
                raise
            except FileExistsError:
                raise SubmissionRejected(
                    f"{path.name} holds {relative} twice (or as a file and a folder)"
                ) from None
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError,
                    zlib.error, ValueError) as error:  # fmt: skip
                raise SubmissionRejected(
                    f"{path.name}: cannot extract {relative} ({error})"
                ) from None


def _safe_member_name(member: zipfile.ZipInfo, archive: str) -> PurePosixPath | None:
    """The member's relative path, None for one to skip (macOS metadata), or reject it."""
    name = member.filename.replace("\\", "/")
    mode = member.external_attr >> 16
    if name.startswith("/") or DRIVE.match(name):
        raise SubmissionRejected(f"{archive} has an absolute path: {member.filename}")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise SubmissionRejected(f"{archive} has a '..' path: {member.filename}")
    if stat.S_ISLNK(mode):
        raise SubmissionRejected(f"{archive} has a symbolic link: {member.filename}")
    parts = tuple(part for part in parts if part not in ("", "."))
    if not parts or parts[0] == "__MACOSX" or any(p in SKIPPED_DIRS for p in parts):
        return None
    return PurePosixPath(*parts)


def copy_folder(source: Path, destination: Path) -> None:
    """Copy the regular files of `source` into `destination` within the caps."""
    count = written = 0
    for relative, path in _regular_files(source):
        count += 1
        written += path.stat().st_size
        if count > MAX_SUBMISSION_FILES or written > MAX_SUBMISSION_BYTES:
            raise SubmissionRejected(
                f"the folder is over {MAX_SUBMISSION_FILES} files or "
                f"{MAX_SUBMISSION_BYTES // 1024 // 1024} MB"
            )
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target, follow_symlinks=False)


def _regular_files(folder: Path) -> list[tuple[str, Path]]:
    """(POSIX relative path, path) of each regular file under `folder`, sorted; symlinks,
    special files, caches and virtual environments skipped."""
    found = []
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = sorted(
            d
            for d in subdirectories
            if d not in SKIPPED_DIRS
            and not os.path.islink(os.path.join(directory, d))
            and not os.path.exists(os.path.join(directory, d, "pyvenv.cfg"))
        )
        for name in sorted(files):
            path = Path(directory) / name
            try:
                mode = path.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode) and not name.endswith((".pyc", ".pyo")):
                found.append((path.relative_to(folder).as_posix(), path))
    return sorted(found)


def _hash_file(digest, path: Path) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    digest.update(b"\0")
