"""dlcc.data.image_masks: layouts, bit depths, mask meanings, splits and clear refusals."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlcc.data.image_masks import load_image_masks
from dlcc.errors import DataError


def write_pairs(
    folder: Path,
    count: int = 6,
    size: int = 8,
    *,
    layout=("images", "masks"),
    mask_values=(0, 255),
    seed: int = 0,
) -> Path:
    """`count` grey 8-bit PNG pairs; masks take `mask_values` at random."""
    rng = np.random.default_rng(seed)
    image_dir, mask_dir = folder / layout[0], folder / layout[1]
    image_dir.mkdir(parents=True)
    mask_dir.mkdir()
    for index in range(count):
        image = rng.integers(0, 256, (size, size), dtype=np.uint8)
        mask = rng.choice(np.array(mask_values, dtype=np.uint8), (size, size))
        Image.fromarray(image).save(image_dir / f"{index}.png")
        Image.fromarray(mask).save(mask_dir / f"{index}.png")
    return folder


def test_both_layouts_load_binary_masks_as_zero_and_one(tmp_path):
    ours = load_image_masks(write_pairs(tmp_path / "a"), test_size=0, val_size=0)
    isbi = load_image_masks(write_pairs(tmp_path / "b", layout=("image", "label")), test_size=0)
    for data in (ours, isbi):
        assert data.classes == ["background", "foreground"]
        assert data.y_train.dtype == np.float32 and data.y_train.shape[1:] == (1, 8, 8)
        assert set(np.unique(data.y_train)) == {0.0, 1.0}
    assert len(ours.x_train) == 6 and len(isbi.x_train) + len(isbi.x_val) == 6


def test_explicit_folders_pair_by_stem_and_name_the_classes(tmp_path):
    write_pairs(tmp_path, count=4)
    for path in (tmp_path / "masks").iterdir():  # a .tif mask pairs with a .png image
        Image.open(path).save(path.with_suffix(".tif"))
        path.unlink()
    data = load_image_masks(
        None, images=tmp_path / "images", masks=tmp_path / "masks", test_size=0,
        val_size=1, class_names=["membrane", "cell"],
    )  # fmt: skip
    assert data.classes == ["membrane", "cell"] and len(data.x_train) == 3
    with pytest.raises(DataError, match="give both"):
        load_image_masks(None, images=tmp_path / "images")


def test_class_index_masks_are_kept_and_too_many_values_refused(tmp_path):
    data = load_image_masks(write_pairs(tmp_path / "a", mask_values=(0, 1, 2, 3)), test_size=0)
    assert data.classes == ["class 0", "class 1", "class 2", "class 3"]
    assert set(np.unique(np.concatenate([data.y_train, data.y_val]))) == {0.0, 1.0, 2.0, 3.0}
    with pytest.raises(DataError, match=r"0, 128.*expected either only 0 and 255"):
        load_image_masks(write_pairs(tmp_path / "b", mask_values=(0, 128)))
    with pytest.raises(DataError, match="at least 4 names"):
        load_image_masks(tmp_path / "a", class_names=["a", "b"])


def test_rgb_images_drop_alpha_and_rgb_masks_need_equal_channels(tmp_path):
    write_pairs(tmp_path, count=3)
    for path in (tmp_path / "images").iterdir():
        grey = np.asarray(Image.open(path))
        Image.fromarray(np.stack([grey, grey, grey, grey * 0 + 255], -1)).save(path)  # RGBA
    for path in (tmp_path / "masks").iterdir():
        grey = np.asarray(Image.open(path))
        Image.fromarray(np.stack([grey] * 3, -1)).save(path)  # RGB, equal channels
    data = load_image_masks(tmp_path, test_size=0, val_size=0)
    assert data.x_train.shape == (3, 3, 8, 8) and set(np.unique(data.y_train)) == {0.0, 1.0}
    mask = np.zeros((8, 8, 3), dtype=np.uint8)
    mask[..., 1] = 255
    Image.fromarray(mask).save(tmp_path / "masks" / "0.png")
    with pytest.raises(DataError, match="RGB mask whose channels differ"):
        load_image_masks(tmp_path)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_images_load_scaled_by_65535(tmp_path, suffix):
    write_pairs(tmp_path, count=2)
    values = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    for index in range(2):
        (tmp_path / "images" / f"{index}.png").unlink()
        Image.fromarray(values).save(tmp_path / "images" / f"{index}{suffix}")
    assert Image.open(tmp_path / "images" / f"0{suffix}").mode.startswith("I;16")
    data = load_image_masks(tmp_path, test_size=0, val_size=0)
    unit = data.x_train * data.std[0] + data.mean[0]  # back to [0, 1]
    np.testing.assert_allclose(unit[0, 0], values / 65535.0, atol=1e-6)


def test_the_same_seed_gives_the_same_split_whatever_the_listing_order(tmp_path, monkeypatch):
    write_pairs(tmp_path, count=10)
    first = load_image_masks(tmp_path, seed=3)
    real_iterdir = Path.iterdir

    def shuffled(self):
        entries = list(real_iterdir(self))
        random.Random(1).shuffle(entries)
        return iter(entries)

    monkeypatch.setattr(Path, "iterdir", shuffled)
    second = load_image_masks(tmp_path, seed=3)
    for split in ("x_train", "x_val", "x_test", "y_train", "y_test"):
        np.testing.assert_array_equal(getattr(first, split), getattr(second, split))
    other = load_image_masks(tmp_path, seed=4)
    assert not np.array_equal(first.x_test, other.x_test)


def test_split_folders_are_used_and_an_unlabelled_test_folder_is_held_out(tmp_path):
    write_pairs(tmp_path / "train", count=6, layout=("image", "label"))
    write_pairs(tmp_path / "val", count=2, layout=("image", "label"), seed=1)
    (tmp_path / "test").mkdir()  # ISBI: unlabelled test images only
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "test" / "0.png")
    data = load_image_masks(tmp_path, test_size=1)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (5, 2, 1)


def test_an_empty_test_split_is_zero_images_of_the_right_shape(tmp_path):
    data = load_image_masks(write_pairs(tmp_path), test_size=0, val_size=2)
    assert data.x_test.shape == (0, 1, 8, 8) and data.y_test.shape == (0, 1, 8, 8)


# ---- refusals: one clear DataError each -----------------------------------------------------


def test_a_png_that_is_really_text_is_named(tmp_path):
    write_pairs(tmp_path, count=2)
    (tmp_path / "images" / "1.png").write_text("not an image")
    with pytest.raises(DataError, match=r"1\.png could not be read as an image.*replace"):
        load_image_masks(tmp_path)


def test_a_mask_of_another_size_is_refused(tmp_path):
    write_pairs(tmp_path, count=2)
    Image.fromarray(np.zeros((4, 8), np.uint8)).save(tmp_path / "masks" / "1.png")
    with pytest.raises(DataError, match=r"mask is 4x8 but its image 1\.png is 8x8"):
        load_image_masks(tmp_path)


def test_images_of_different_sizes_are_refused(tmp_path):
    write_pairs(tmp_path, count=2)
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "images" / "1.png")
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "masks" / "1.png")
    with pytest.raises(DataError, match="must have the same size"):
        load_image_masks(tmp_path)


def test_empty_missing_and_unpaired_folders_are_refused(tmp_path):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_image_masks(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        load_image_masks(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="expected the folders images/ and masks/"):
        load_image_masks(tmp_path / "flat")
    with pytest.raises(DataError, match="does not exist"):
        load_image_masks(None, images=tmp_path / "nowhere", masks=tmp_path / "flat")
    write_pairs(tmp_path / "pairs", count=3)
    (tmp_path / "pairs" / "masks" / "2.png").unlink()
    with pytest.raises(DataError, match=r"have no mask of the same name.*2\.png"):
        load_image_masks(tmp_path / "pairs")
    with pytest.raises(DataError, match=r"needs data\.path"):
        load_image_masks(None)


def test_a_32_bit_image_beyond_16_bits_is_refused(tmp_path):
    write_pairs(tmp_path, count=2)
    Image.fromarray(np.full((8, 8), 70000, dtype=np.int32)).save(tmp_path / "images" / "1.tif")
    (tmp_path / "images" / "1.png").unlink()
    with pytest.raises(DataError, match=r"1\.tif.*outside 0\.\.65535"):
        load_image_masks(tmp_path)


def write_png_rgb16(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit RGB PNG, written by hand (Pillow cannot save one): (H, W, 3) uint16."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + pixels[row].astype(">u2").tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # 16-bit, truecolour
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def test_a_16_bit_rgb_png_is_refused_and_a_16_bit_rgb_npy_loads(tmp_path):
    write_pairs(tmp_path, count=2)
    colour = (np.arange(8 * 8 * 3).reshape(8, 8, 3) * 300).astype(np.uint16)
    (tmp_path / "images" / "1.png").unlink()
    write_png_rgb16(tmp_path / "images" / "1.png", colour)
    with pytest.raises(DataError, match=r"1\.png: a 16-bit colour image.*\.npy"):
        load_image_masks(tmp_path)
    for index in range(2):
        (tmp_path / "images" / f"{index}.png").unlink()
        np.save(tmp_path / "images" / f"{index}.npy", colour)
    data = load_image_masks(tmp_path, test_size=0, val_size=0)
    unit = data.x_train * data.std[:, None, None] + data.mean[:, None, None]
    np.testing.assert_allclose(unit[0], np.moveaxis(colour, -1, 0) / 65535.0, atol=1e-6)
