"""All-or-nothing file writes: the one way this project writes a file a user keeps.

Downloads, checkpoints, metrics and plots are written to a temporary file in the same
folder and renamed over the destination only when complete, so a crash or Ctrl-C never
leaves a half-written file that a later run would take for a good one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".part"


@contextmanager
def atomic_write(
    destination: str | Path, *, verify: Callable[[Path], None] | None = None
) -> Iterator[BinaryIO]:
    """Write `destination` all-or-nothing: yields a binary handle on a temporary file.

    The temporary file lives in the same folder (so the final rename is atomic) and is named
    ``.<name>.<random>.part``, which no loader ever reads. On leaving the block it is flushed,
    checked with `verify(temp_path)` (which raises to refuse it), then renamed onto
    `destination`. On any exception, KeyboardInterrupt included, it is deleted.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    file_descriptor, temp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=TEMP_SUFFIX
    )
    temp_path = Path(temp_name)
    try:
        with os.fdopen(file_descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if verify is not None:
            verify(temp_path)
        # mkstemp creates the file readable by its owner only; these files are not secrets.
        os.chmod(temp_path, 0o644)
        os.replace(temp_path, destination)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def write_text_atomic(destination: str | Path, text: str) -> None:
    """Write a UTF-8 text file all-or-nothing."""
    with atomic_write(destination) as handle:
        handle.write(text.encode("utf-8"))


def remove_stale_temporaries(destination: str | Path) -> None:
    """Delete ``.<name>.*.part`` files left behind by a process that was killed mid-write."""
    destination = Path(destination)
    for stale in destination.parent.glob(f".{destination.name}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)
