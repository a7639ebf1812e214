"""Checksums, atomic writes and checksummed downloads (urllib only).

The guarantee: a file appears under its final name only after all of its bytes arrived and
its checksum matched. Bytes go to a temporary file in the destination folder, which is
renamed with `os.replace` (atomic on POSIX and Windows within one file system) once verified,
and deleted on any failure, an interrupt included.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from tqdm.auto import tqdm

from dlcc import __version__
from dlcc.atomic import atomic_write, remove_stale_temporaries
from dlcc.data.registry import DatasetFile
from dlcc.errors import DataError

CHUNK_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_TIMEOUT_S = 60.0


class Response(Protocol):
    """What a downloader needs from an opened URL (urllib's response has it)."""

    headers: object

    def read(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[str, float], Response]


def urllib_opener(url: str, timeout: float) -> Response:
    """Open `url` with urllib; a User-Agent is sent because some mirrors refuse Python's."""
    request = urllib.request.Request(url, headers={"User-Agent": f"dlcc/{__version__}"})
    return urllib.request.urlopen(request, timeout=timeout)


def is_gzip_file(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk


@contextmanager
def read_errors_as_data_errors(shown_as: str | Path, remedy: str) -> Iterator[None]:
    """Turn the errors of reading a (possibly gzip) data file into one-line DataErrors
    that name the file and say what to do."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"{shown_as} does not exist: {remedy}") from None
    except (OSError, EOFError, zlib.error) as error:
        # gzip reports a cut-off file as EOFError and a damaged one as BadGzipFile/zlib.error.
        raise DataError(
            f"{shown_as} is truncated or corrupt ({type(error).__name__}: {error}): {remedy}"
        ) from error


def file_digests(
    path: Path,
    algorithms: Sequence[str] = ("sha256",),
    *,
    decompress_gzip: bool = False,
    remedy: str = "delete it and download it again",
    shown_as: str | None = None,
) -> dict[str, str]:
    """Hex digests of a file, in one pass: ``{"sha256": ..., "md5": ...}``.

    With `decompress_gzip`, a gzip file is hashed by its decompressed content (a file that is
    not gzip is hashed as it is), so a re-compressed or unpacked copy gives the same digest.
    A truncated or corrupt gzip stream raises DataError naming the file (as `shown_as`, if
    given) and `remedy`.
    """
    hashers = {name: hashlib.new(name) for name in algorithms}
    path = Path(path)
    shown_as = shown_as or str(path)
    with read_errors_as_data_errors(shown_as, remedy):
        if decompress_gzip and is_gzip_file(path):
            opened: BinaryIO = gzip.open(path, "rb")
        else:
            opened = open(path, "rb")
        with opened as handle:
            for chunk in _read_chunks(handle):
                for hasher in hashers.values():
                    hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def sha256_file(path: Path, *, decompress_gzip: bool = False) -> str:
    """Hex sha256 of a file's bytes, or of its decompressed content with `decompress_gzip`."""
    return file_digests(path, ("sha256",), decompress_gzip=decompress_gzip)["sha256"]


def checksum_problem(
    path: Path,
    dataset_file: DatasetFile,
    *,
    remedy: str = "delete it and download it again",
    shown_as: str | None = None,
) -> str | None:
    """None when `path` matches every checksum the registry knows for it, else why not.

    A file with no known checksum returns None: the caller reports that separately.
    Raises DataError when the file cannot be read to the end (truncated gzip).
    """
    shown_as = shown_as or str(path)
    expected = {
        algorithm: value
        for algorithm, value in (("sha256", dataset_file.sha256), ("md5", dataset_file.md5))
        if value
    }
    if not expected:
        return None
    actual = file_digests(
        path,
        tuple(expected),
        decompress_gzip=dataset_file.checksum_of_content,
        remedy=remedy,
        shown_as=shown_as,
    )
    for algorithm, value in expected.items():
        if actual[algorithm] != value:
            what = "decompressed content" if dataset_file.checksum_of_content else "bytes"
            return (
                f"{shown_as}: {algorithm} of its {what} is {actual[algorithm]}, "
                f"expected {value}: {remedy}"
            )
    return None


class _TransferFailed(Exception):
    """The network, not the data, failed: try the next mirror."""


def _content_length(response: Response) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _open_url(url: str, *, opener: Opener, timeout: float) -> Response:
    try:
        return opener(url, timeout)
    except (OSError, http.client.HTTPException, ValueError) as error:
        # URLError/HTTPError/refused/timeouts are OSErrors; ValueError is a malformed URL.
        raise _TransferFailed(_describe_network_error(error)) from error


def _copy_response(
    response: Response, handle: BinaryIO, *, description: str, progress: bool | None
) -> None:
    expected_bytes = _content_length(response)
    received_bytes = 0
    # disable=None: a bar on a terminal, silence in logs and under pytest.
    with tqdm(
        total=expected_bytes,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=description,
        disable=None if progress is None else not progress,
        leave=False,
    ) as bar:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except (OSError, http.client.HTTPException) as error:
                raise _TransferFailed(_describe_network_error(error)) from error
            if not chunk:
                break
            handle.write(chunk)
            received_bytes += len(chunk)
            bar.update(len(chunk))
    # urllib returns b"" when a server hangs up early instead of raising: count the bytes.
    if expected_bytes is not None and received_bytes != expected_bytes:
        raise _TransferFailed(
            f"connection closed after {received_bytes:,} of {expected_bytes:,} bytes"
        )


def _describe_network_error(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def download_file(
    dataset_file: DatasetFile,
    destination: Path,
    *,
    urls: Sequence[str] | None = None,
    opener: Opener | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    progress: bool | None = None,
    offline_hint: str = "",
) -> Path:
    """Download `dataset_file` to `destination`, verified and atomically; returns the path.

    Args:
        dataset_file: the registry entry; its checksums are checked before the file appears.
        destination: final path; its folder is created if needed.
        urls: URLs to try in order (default: ``dataset_file.urls``). Tests pass ``file://``
            or ``http://127.0.0.1:PORT/...`` URLs here.
        opener: ``opener(url, timeout) -> response`` (default: urllib's urlopen).
        timeout: seconds to wait on a connection or read.
        progress: True/False forces the tqdm bar on/off; None shows it only on a terminal.
        offline_hint: appended to the error when every URL fails, saying where to put the file.

    Raises:
        DataError: every URL failed (network error, truncated transfer or checksum mismatch);
            no file and no temporary file is left behind.
    """
    destination = Path(destination)
    urls = tuple(urls if urls is not None else dataset_file.urls)
    opener = opener or urllib_opener
    if not urls:
        raise DataError(f"{dataset_file.filename} has no download URL. {offline_hint}".strip())
    try:
        remove_stale_temporaries(destination)
    except OSError:
        pass  # a folder we cannot list or write is reported below, with advice

    def verify(temp_path: Path) -> None:
        problem = checksum_problem(
            temp_path,
            dataset_file,
            remedy="the download is damaged",
            shown_as=f"downloaded {dataset_file.filename}",
        )
        if problem:
            raise DataError(problem)

    failures: list[str] = []
    any_data_arrived = False
    for url in urls:
        try:
            # Connect first: with no network, nothing is created on disk at all.
            response = _open_url(url, opener=opener, timeout=timeout)
            try:
                with atomic_write(destination, verify=verify) as handle:
                    _copy_response(
                        response, handle, description=dataset_file.filename, progress=progress
                    )
            finally:
                response.close()
            return destination
        except _TransferFailed as error:
            failures.append(f"{url}: {error}")
        except DataError as error:
            any_data_arrived = True
            failures.append(f"{url}: {error}")
        except OSError as error:
            raise DataError(
                f"cannot write {destination} ({error}); check free space and permissions of "
                f"{destination.parent}, or choose another folder with --data-dir or "
                "DLCC_DATA_DIR"
            ) from error
    reasons = "; ".join(failures)
    if any_data_arrived:
        lead = f"could not get a good copy of {dataset_file.filename}; nothing was saved"
    else:
        lead = f"could not download {dataset_file.filename} (no network?)"
    raise DataError(f"{lead}: {reasons}. {offline_hint}".strip())
