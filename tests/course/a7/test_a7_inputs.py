"""Part 1: refusing bad input (`numeric_array` and `decode_image` in `dlcc.deploy.inputs`).

A server meets every kind of input; each refusal must be a 4xx with a code a program can
test and a message a person can act on, and what is accepted must come out exactly right.
The expected pixels come from PIL in this process; the refusals are listed in the
functions' docstrings.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from a7_helpers import checked, png


def refusal(result: dict) -> tuple:
    assert "value" not in result, f"accepted, but should have been refused: {result['value']!r}"
    return result["status"], result["code"]


# ---- numeric_array ----------------------------------------------------------------------


def test_numeric_array_accepts_nested_lists_of_numbers():
    value = [[0, 0.5, 1], [0.25, 1e-3, 7]]
    result = checked("numeric_array", value, "'input'", "(2, 3)")
    assert "value" in result, f"refused: {result}"
    array = result["value"]
    assert array.dtype == np.float64 and array.shape == (2, 3)
    np.testing.assert_array_equal(array, np.array(value, dtype=np.float64))


def test_numeric_array_refuses_what_is_not_an_array():
    for value in (3.0, "0.5", {"input": [1, 2]}, None):
        result = checked("numeric_array", value, "'input'", "(28, 28)")
        assert refusal(result) == (422, "bad_shape"), value
        assert "'input'" in result["message"] and "(28, 28)" in result["message"]


def test_numeric_array_refuses_ragged_and_empty_arrays():
    ragged = checked("numeric_array", [[1, 2, 3], [4, 5]], "'input'", "(2, 3)")
    assert refusal(ragged) == (422, "bad_shape")
    assert "ragged" in ragged["message"] or "length" in ragged["message"]
    for empty in ([], [[]]):
        result = checked("numeric_array", empty, "'input'", "(2, 3)")
        assert refusal(result) == (422, "bad_shape"), empty
        assert "empty" in result["message"]


def test_numeric_array_refuses_values_that_are_not_numbers():
    for value in ([1, "2"], [[True, False]], [1.0, None], [[1, {"a": 2}]], [True]):
        result = checked("numeric_array", value, "'signal'", "(N,)")
        assert refusal(result) == (422, "invalid_input"), value
        assert "'signal'" in result["message"]


def test_numeric_array_refuses_nan_and_infinity_and_says_how_many():
    value = [[0.1, math.nan, 0.3], [math.inf, 0.5, -math.inf]]
    result = checked("numeric_array", value, "'input'", "(2, 3)")
    assert refusal(result) == (422, "not_finite")
    assert "3" in result["message"]
    single = checked("numeric_array", [0.0, math.nan], "'input'", "(2,)")
    assert refusal(single) == (422, "not_finite")
    assert "1" in single["message"]


# ---- decode_image -----------------------------------------------------------------------


def test_decode_image_reads_grey_png_exactly():
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(9, 13), dtype=np.uint8)
    result = checked("decode_image", png(pixels), channels=1, max_side=64)
    assert "value" in result, f"refused: {result}"
    image = result["value"]
    assert image.shape == (9, 13), "(H, W): rows first"
    assert image.dtype == np.float64
    np.testing.assert_array_equal(image, pixels / 255.0)


def test_decode_image_converts_colour_to_what_the_model_takes():
    from PIL import Image

    rng = np.random.default_rng(8)
    rgb = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    grey = checked("decode_image", png(rgb), channels=1, max_side=64)["value"]
    expected = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64) / 255.0
    np.testing.assert_array_equal(grey, expected)
    colour = checked("decode_image", png(rgb), channels=3, max_side=64)["value"]
    assert colour.shape == (6, 5, 3)
    np.testing.assert_array_equal(colour, rgb / 255.0)
    jpeg = png(np.full((8, 8), 200, dtype=np.uint8), format="JPEG")
    decoded = checked("decode_image", jpeg, channels=3, max_side=64)
    assert "value" in decoded and decoded["value"].shape == (8, 8, 3), "JPEG is accepted"


def test_decode_image_refuses_bytes_that_are_not_an_image():
    for data in (b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 5):
        result = checked("decode_image", data, channels=1, max_side=64)
        assert refusal(result) == (422, "bad_image"), data[:12]


def test_decode_image_refuses_other_formats_with_415():
    for fmt in ("GIF", "BMP", "TIFF"):
        data = png(np.zeros((4, 4), dtype=np.uint8), format=fmt)
        result = checked("decode_image", data, channels=1, max_side=64)
        assert refusal(result) == (415, "unsupported_media_type"), fmt
        assert fmt in result["message"] and "PNG" in result["message"]


def test_decode_image_refuses_a_large_image_before_decoding_it():
    wide = png(np.zeros((3, 65), dtype=np.uint8))
    result = checked("decode_image", wide, channels=1, max_side=64)
    assert refusal(result) == (413, "image_too_large")
    assert "65" in result["message"] and "64" in result["message"]
    # A 60-byte file that declares 30000 x 30000 pixels: refused from its header.
    result = checked("decode_image", declared_png(30_000, 30_000), channels=1, max_side=4096)
    assert refusal(result) == (413, "image_too_large")


def test_decode_image_refuses_a_truncated_file():
    rng = np.random.default_rng(9)
    data = png(rng.integers(0, 256, size=(40, 40), dtype=np.uint8))
    result = checked("decode_image", data[: len(data) // 2], channels=1, max_side=64)
    assert refusal(result) == (422, "bad_image")


def declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height grey pixels, with almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )  # fmt: skip
