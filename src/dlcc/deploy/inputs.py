"""Decoding and checking what a client sends: JSON arrays, images, ECG uploads.

Every check raises `InputError` (a 4xx status, a code, a message that says what was
expected, what came, and what to do); nothing here answers with a traceback. Uploads are
read from memory; a WFDB record, which wfdb reads from files, is written into a fresh
temporary directory that is deleted afterwards, under names that are checked first.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

import numpy as np

from dlcc.deploy.errors import InputError

IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_ECG_SAMPLES = 2_000_000  # about 1.5 h at 360 Hz


def numeric_array(value, what: str, expected: str) -> np.ndarray:
    """A JSON value (nested lists of numbers) as a float64 array, finite; else 422.

    `what` names the value in messages ("'input'"), `expected` its shape ("(28, 28)"). The
    refusals, in this order, each an `InputError` with status 422 and a code:
    - not a list (a number, a string, an object): "bad_shape";
    - a ragged array (rows of different lengths): "bad_shape";
    - an empty array: "bad_shape";
    - values that are not numbers (strings, booleans, null, objects): "invalid_input";
    - NaN or infinite values (Python's json reads NaN and Infinity): "not_finite", the
      message saying how many.
    The shape is left to the caller, which knows what its model takes.
    """
    # BEGIN SOLUTION numeric_array: check a JSON array: a list, not ragged or empty, numbers, finite
    if not isinstance(value, list):
        raise InputError(
            422, "bad_shape",
            f"{what} must be a JSON array of numbers shaped {expected}; received "
            f"{type(value).__name__}",
        )  # fmt: skip
    try:
        array = np.asarray(value)
    except ValueError:
        raise InputError(
            422, "bad_shape",
            f"{what} is a ragged array (rows of different lengths); expected {expected}",
        ) from None  # fmt: skip
    if array.size == 0:
        raise InputError(422, "bad_shape", f"{what} is empty; expected {expected}")
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) and not np.issubdtype(array.dtype, np.bool_)
    ):
        raise InputError(
            422, "invalid_input",
            f"{what} must hold numbers only; received values of type {array.dtype.kind!r} "
            f"(strings, booleans, null or nested objects are refused); expected {expected}",
        )  # fmt: skip
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise InputError(
            422, "not_finite",
            f"{what} holds {bad} value(s) that are NaN or infinite; send finite numbers only",
        )  # fmt: skip
    return array
    # END SOLUTION
    # BEGIN PROMPT
    # Raise InputError(422, code, message) for each refusal above; every message names
    # `what`, says what was expected (`expected`) and what was received. np.asarray on a
    # ragged list raises ValueError (catch it: `raise InputError(...) from None`); on
    # strings or None it gives a non-numeric dtype (array.dtype == object, or kind "U"):
    # accept only np.issubdtype(array.dtype, np.number), and refuse booleans (np.bool_)
    # too. Count the non-finite values with np.isfinite. Return array.astype(np.float64).
    # END PROMPT


def decode_image(data: bytes, *, channels: int, max_side: int) -> np.ndarray:
    """PNG/JPEG bytes -> (H, W) (one channel) or (H, W, 3) float64 pixels in [0, 1].

    The refusals, each an `InputError` with a status and a code:
    - empty bytes, or bytes that are not an image: 422 "bad_image";
    - an image format other than PNG or JPEG (GIF, BMP, TIFF, ...): 415
      "unsupported_media_type";
    - a side longer than `max_side` pixels: 413 "image_too_large", checked from the header,
      before the pixels are decoded (a small file can declare a huge image); PIL's own
      decompression-bomb refusal is a 413 too;
    - a file whose pixels do not decode (truncated, damaged): 422 "bad_image".
    A colour image is converted to grey for a one-channel model and a grey one to RGB for a
    three-channel model; 8-bit values are divided by 255.
    """
    from PIL import Image, UnidentifiedImageError

    # BEGIN SOLUTION decode_image: decode a PNG/JPEG upload, refusing what is not one
    if not data:
        raise InputError(422, "bad_image", "the uploaded file is empty; upload a PNG or JPEG")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise InputError(413, "image_too_large", "the image has too many pixels") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InputError(
            422, "bad_image",
            "the uploaded file does not decode as an image (expected PNG or JPEG bytes)",
        ) from None  # fmt: skip
    if image.format not in IMAGE_FORMATS:
        raise InputError(
            415, "unsupported_media_type",
            f"the uploaded image is {image.format}; this server reads PNG and JPEG only",
        )  # fmt: skip
    width, height = image.size
    if width > max_side or height > max_side:
        raise InputError(
            413, "image_too_large",
            f"the image is {width}x{height} pixels; the largest side accepted is {max_side}: "
            "downscale it first",
        )  # fmt: skip
    try:
        image.load()
        converted = image.convert("L" if channels == 1 else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        raise InputError(
            422, "bad_image", "the uploaded image is truncated or damaged and does not decode"
        ) from None
    return np.asarray(converted, dtype=np.float64) / 255.0
    # END SOLUTION
    # BEGIN PROMPT
    # PIL: Image.open(io.BytesIO(data)) reads only the header (format, size); it raises
    # UnidentifiedImageError (or OSError, ValueError) on bytes that are not an image, and
    # Image.DecompressionBombError on an absurd pixel count. image.format is "PNG", "JPEG",
    # "GIF", ... (IMAGE_FORMATS lists the accepted ones); image.size is (width, height).
    # Only then decode: image.load(), then image.convert("L") (channels == 1) or "RGB":
    # these raise OSError on a truncated file. Every message says what was expected and
    # what to do (e.g. "downscale it first"); raise them `from None` (no traceback chain).
    # END PROMPT


def resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W[, C]) pixels in [0, 1] resized to (height, width[, C]) with a box filter."""
    from PIL import Image

    if pixels.shape[:2] == (height, width):
        return pixels
    if pixels.ndim == 2:
        channels = [pixels]
    else:
        channels = [pixels[..., c] for c in range(pixels.shape[-1])]
    out = [
        np.asarray(
            Image.fromarray(c.astype(np.float32)).resize((width, height), Image.Resampling.BOX)
        )
        for c in channels
    ]
    return out[0].astype(np.float64) if pixels.ndim == 2 else np.stack(out, axis=-1)


# ---- ECG ------------------------------------------------------------------------------


def check_fs(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(
            422, "invalid_input",
            f"fs (the sampling rate in Hz) must be a number, e.g. 360; received {value!r}",
        )  # fmt: skip
    fs = float(value)
    if not np.isfinite(fs) or not 100.0 <= fs <= 100_000.0:
        raise InputError(
            422, "out_of_range",
            f"fs must lie in 100..100000 Hz (the detector needs >= 100 Hz); received {value!r}",
        )  # fmt: skip
    return fs


def read_ecg_csv(data: bytes, fs: float | None) -> tuple[np.ndarray, float]:
    """A CSV upload -> (signal (N,), fs).

    One column (the signal; fs from the form field `fs`), or two (time in seconds, then the
    signal; fs from the time step). A first line that is not numbers is a header.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(
            422, "bad_record", "the CSV upload is not UTF-8 text; export it as plain CSV"
        ) from None
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(c.strip() for c in row)]
    if rows and not _is_numbers(rows[0]):
        rows = rows[1:]  # a header
    if len(rows) < 2:
        raise InputError(
            422, "bad_record",
            "the CSV holds fewer than 2 rows of numbers; expected one column (the signal, "
            "with the form field fs) or two (time_s, signal)",
        )  # fmt: skip
    if len(rows) > MAX_ECG_SAMPLES:
        raise InputError(
            413, "too_large", f"the CSV has {len(rows)} rows; at most {MAX_ECG_SAMPLES}"
        )
    widths = {len(row) for row in rows}
    if len(widths) != 1 or widths.pop() not in (1, 2):
        raise InputError(
            422, "bad_record",
            "every CSV row must have the same 1 or 2 columns (signal, or time_s,signal)",
        )  # fmt: skip
    try:
        table = np.array([[float(c) for c in row] for row in rows], dtype=np.float64)
    except ValueError:
        raise InputError(
            422, "bad_record", "the CSV holds a cell that is not a number (after its header)"
        ) from None
    if not np.isfinite(table).all():
        raise InputError(422, "not_finite", "the CSV holds NaN or infinite values")
    if table.shape[1] == 2:
        steps = np.diff(table[:, 0])
        if not (steps > 0).all():
            raise InputError(
                422, "bad_record", "the CSV's first column (time in s) must increase row by row"
            )
        fs = 1.0 / float(np.median(steps))
        return table[:, 1], check_fs(round(fs, 6))
    if fs is None:
        raise InputError(
            422, "invalid_input",
            "a one-column CSV needs the sampling rate: send the form field fs (e.g. 360), or "
            "add a first column of times in seconds",
        )  # fmt: skip
    return table[:, 0], check_fs(fs)


def _is_numbers(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
    except ValueError:
        return False
    return True


def read_wfdb_upload(files: dict[str, bytes]) -> tuple[np.ndarray, float]:
    """A WFDB record uploaded as its files (NAME.hea and the signal files it names)."""
    from dlcc.ecg.records import read_record
    from dlcc.errors import DlccError

    for name in files:
        if not SAFE_NAME.match(name) or name in (".", ".."):
            raise InputError(
                422, "bad_record",
                f"the uploaded file name {name!r} is refused: use letters, digits, _ . - only",
            )  # fmt: skip
    headers = [name for name in files if name.endswith(".hea")]
    if len(headers) != 1:
        raise InputError(
            422, "bad_record",
            f"a WFDB upload needs exactly one .hea header and its signal file(s); received "
            f"{sorted(files)}",
        )  # fmt: skip
    header = headers[0]
    needed = _signal_files(files[header])
    missing = sorted(set(needed) - set(files))
    if missing:
        raise InputError(
            422, "bad_record",
            f"{header} names signal file(s) {missing} that were not uploaded; upload them in "
            "the same request (several `file` fields)",
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dlcc-serve-") as folder:
        for name, content in files.items():
            (Path(folder) / name).write_bytes(content)
        try:
            record = read_record(Path(folder) / header[: -len(".hea")], annotations=None)
        except DlccError as error:
            raise InputError(422, "bad_record", f"the WFDB record does not read: {error}") from None
        except Exception as error:  # wfdb's own errors on a damaged file
            raise InputError(
                422, "bad_record",
                f"the WFDB record does not read ({type(error).__name__}); check the .hea "
                "and .dat files",
            ) from None  # fmt: skip
    return record.signal, float(record.fs)


def _signal_files(header: bytes) -> list[str]:
    """The signal file names a header lists; each must be a plain, safe name."""
    try:
        lines = [
            line.strip()
            for line in header.decode("ascii").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        count = int(lines[0].split()[1])
        names = [lines[1 + i].split()[0] for i in range(count)]
    except (UnicodeDecodeError, IndexError, ValueError):
        raise InputError(
            422, "bad_record", "the .hea upload is not a readable WFDB header"
        ) from None
    for name in names:
        if not SAFE_NAME.match(name) or "/" in name:
            raise InputError(
                422, "bad_record",
                f"the header names the signal file {name!r}; only plain file names uploaded "
                "with it are read",
            )  # fmt: skip
    return names
