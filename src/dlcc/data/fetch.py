"""`fetch_dataset`: put a registered dataset into the data directory, verified.

Files already present and matching their checksums are kept; missing files are downloaded
(see `download.download_file`: checksummed, atomic). A present file that fails its checksum
is never overwritten silently: the error names it and says to delete it.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dlcc.data.download import DEFAULT_TIMEOUT_S, Opener, checksum_problem, download_file
from dlcc.data.paths import (
    fetch_folder,
    find_dataset_folder,
    locate_file,
    missing_files,
    resolve_data_dir,
)
from dlcc.data.registry import DatasetFile, DatasetSpec, get_spec
from dlcc.data.status import placement_hint
from dlcc.errors import DataError

CIFAR_ARCHIVE_ROOT = "cifar-10-batches-py"


@dataclass
class FetchResult:
    """What `fetch_dataset` did.

    Attributes:
        folder: where the dataset now is (None for the embedded digits).
        downloaded: filenames fetched over the network by this call.
        already_present: filenames that were there and verified.
    """

    folder: Path | None
    downloaded: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)


def _offline_hint(spec: DatasetSpec, data_root: Path) -> str:
    hint = placement_hint(spec, data_root)
    return f"Without network access, {hint}, then run `dlcc data verify {spec.name}`."


def _urls_for(dataset_file: DatasetFile, base_urls: Sequence[str] | None) -> list[str] | None:
    if base_urls is None:
        return None
    return [base.rstrip("/") + "/" + dataset_file.filename for base in base_urls]


def fetch_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    base_urls: Sequence[str] | None = None,
    opener: Opener | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool | None = None,
) -> FetchResult:
    """Make dataset `name` present in the data directory, downloading what is missing.

    Args:
        name: a registry name (see ``dlcc data list``).
        data_dir: where datasets live; default $DLCC_DATA_DIR, else ~/.cache/dlcc.
        base_urls: mirrors to use instead of the registry's URLs: each file is fetched from
            ``base + filename``. Tests point this at a local server; never the internet.
        opener: ``opener(url, timeout) -> response`` replacing urllib's urlopen.
        timeout: seconds to wait on a connection or read.
        progress: force the download bars on/off (None: on when stderr is a terminal).

    Raises:
        DataError: no network (the message says which files to put in which folder), a
            download that fails its checksum, or a present file that fails its checksum.
    """
    spec = get_spec(name)
    if spec.file_format == "embedded":
        return FetchResult(folder=None)
    data_root = resolve_data_dir(data_dir)
    if not spec.downloadable:
        folder = find_dataset_folder(spec, data_root)
        if folder is None:
            raise DataError(
                f"dataset {spec.name} has no public download: {placement_hint(spec, data_root)}"
            )
        return FetchResult(folder=folder, already_present=[file.filename for file in spec.files])
    if spec.archive is not None:
        return _fetch_archive_dataset(
            spec, data_root, base_urls=base_urls, opener=opener, timeout=timeout, progress=progress
        )
    return _fetch_file_dataset(
        spec, data_root, base_urls=base_urls, opener=opener, timeout=timeout, progress=progress
    )


def _fetch_file_dataset(
    spec: DatasetSpec,
    data_root: Path,
    *,
    base_urls: Sequence[str] | None,
    opener: Opener | None,
    timeout: float,
    progress: bool | None,
) -> FetchResult:
    folder = find_dataset_folder(spec, data_root) or fetch_folder(spec, data_root)
    result = FetchResult(folder=folder)
    remedy = f"delete it and run `dlcc data fetch {spec.name}` again"
    for dataset_file in spec.files:
        existing = locate_file(folder, dataset_file)
        if existing is not None:
            problem = checksum_problem(existing, dataset_file, remedy=remedy)
            if problem:
                raise DataError(problem)
            result.already_present.append(dataset_file.filename)
            continue
        download_file(
            dataset_file,
            folder / dataset_file.filename,
            urls=_urls_for(dataset_file, base_urls),
            opener=opener,
            timeout=timeout,
            progress=progress,
            offline_hint=_offline_hint(spec, data_root),
        )
        result.downloaded.append(dataset_file.filename)
    return result


def _fetch_archive_dataset(
    spec: DatasetSpec,
    data_root: Path,
    *,
    base_urls: Sequence[str] | None,
    opener: Opener | None,
    timeout: float,
    progress: bool | None,
) -> FetchResult:
    existing = find_dataset_folder(spec, data_root)
    if existing is not None:
        present = [file.filename for file in spec.files if locate_file(existing, file)]
        return FetchResult(folder=existing, already_present=present)
    assert spec.archive is not None
    final_folder = data_root / spec.folders[0]  # .../cifar10/cifar-10-batches-py
    if final_folder.exists():
        # Some files but not a usable set: we will not guess which of them to trust.
        raise DataError(
            f"{final_folder} exists but is incomplete (missing "
            f"{', '.join(missing_files(spec, final_folder))}): "
            f"delete that folder and run `dlcc data fetch {spec.name}` again"
        )
    archive_path = final_folder.parent / spec.archive.filename
    download_file(
        spec.archive,
        archive_path,
        urls=_urls_for(spec.archive, base_urls),
        opener=opener,
        timeout=timeout,
        progress=progress,
        offline_hint=_offline_hint(spec, data_root),
    )
    try:
        _extract_archive(archive_path, final_folder, spec)
    finally:
        # The verified files are what we keep; the 170 MB tarball is not needed again.
        archive_path.unlink(missing_ok=True)
    return FetchResult(folder=final_folder, downloaded=[spec.archive.filename])


def _safe_members(archive: tarfile.TarFile, archive_path: Path) -> list[tarfile.TarInfo]:
    """The archive's regular files under ``cifar-10-batches-py/``; refuse anything odd."""
    members = []
    for member in archive.getmembers():
        parts = Path(member.name).parts
        unsafe = member.name.startswith(("/", "\\")) or ".." in parts
        if unsafe or not parts or parts[0] != CIFAR_ARCHIVE_ROOT:
            raise DataError(
                f"{archive_path} contains {member.name!r}, outside {CIFAR_ARCHIVE_ROOT}/: it is "
                "not the official archive; delete it"
            )
        if member.isfile():
            members.append(member)
        elif not member.isdir():
            raise DataError(
                f"{archive_path} contains a link or device {member.name!r}: it is not the "
                "official archive; delete it"
            )
    return members


def _extract_archive(archive_path: Path, final_folder: Path, spec: DatasetSpec) -> None:
    """Unpack into a temporary folder beside `final_folder`, check, then rename into place."""
    temp_dir = Path(
        tempfile.mkdtemp(dir=final_folder.parent, prefix=f".{final_folder.name}.", suffix=".part")
    )
    try:
        try:
            with tarfile.open(archive_path, "r:gz") as archive:
                members = _safe_members(archive, archive_path)
                extract_options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                archive.extractall(temp_dir, members=members, **extract_options)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise DataError(
                f"{archive_path} could not be unpacked ({type(error).__name__}: {error}): "
                f"run `dlcc data fetch {spec.name}` again"
            ) from error
        unpacked = temp_dir / CIFAR_ARCHIVE_ROOT
        missing = [
            file.filename
            for file in spec.files
            if file.required and not (unpacked / file.filename).is_file()
        ]
        if missing:
            raise DataError(
                f"{archive_path} lacks {', '.join(missing)}: it is not the official archive"
            )
        os.replace(unpacked, final_folder)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
